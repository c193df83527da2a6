"""
Generate qapi-types.{c,h} (C types, enum tables, qapi_free_FOO) and
qapi-visit.{c,h} (visit_type_FOO for every type).

C layout follows QEMU: optional scalar members have a 'bool has_NAME'
before them, optional pointer members are simply NULL when absent; a
struct's base members come first (so a pointer to it is also a pointer to
its base); a flat union adds 'union { Branch name; ... } u' of variant
members embedded by value; an alternate is 'QType type' plus a union of
branches.
"""

from .common import c_name, mcgen
from .schema import (AlternateType, ArrayType, BuiltinType, EnumType,
                     ObjectType)


def _guard(fname):
    return c_name(fname, False).upper()


def type_decl_order(types):
    """Order object/alternate types so that types embedded by value come
    before their users."""
    done = set()
    out = []

    def embeds(t):
        if isinstance(t, ObjectType):
            return [vt for _, _, vt in (t.variants or [])]
        if isinstance(t, AlternateType):
            return [m.type for m in t.variants
                    if isinstance(m.type, ObjectType)]
        return []

    def visit(t):
        if t.name in done:
            return
        done.add(t.name)
        for e in embeds(t):
            if e in types:
                visit(e)
        out.append(t)

    for t in types:
        visit(t)
    return out


def gen_member_decls(members):
    out = ''
    for m in members:
        if m.need_has():
            out += '    bool has_%s;\n' % m.c_name()
        out += '    %s%s;\n' % (_space(m.type.c_type()), m.c_name())
    return out


def _space(ctype):
    return ctype if ctype.endswith('*') else ctype + ' '


def gen_enum_h(typ):
    out = 'typedef enum %s {\n' % typ.c_name()
    for m in typ.members:
        out += '    %s,\n' % typ.const(m.name)
    out += '    %s,\n} %s;\n\n' % (typ.max_const(), typ.c_name())
    out += 'extern const QEnumLookup %s_lookup;\n' % typ.c_name()
    out += '#define %s_str(val) qapi_enum_lookup(&%s_lookup, (val))\n\n' % (
        typ.c_name(), typ.c_name())
    return out


def gen_enum_c(typ):
    out = 'static const char *const %s_names[] = {\n' % typ.c_name()
    for m in typ.members:
        out += '    [%s] = "%s",\n' % (typ.const(m.name), m.name)
    out += '};\n\n'
    feats = [m for m in typ.members if set(m.features) &
             {'deprecated', 'unstable'}]
    if feats:
        out += 'static const unsigned char %s_features[] = {\n' % \
            typ.c_name()
        for m in feats:
            flags = ' | '.join('QAPI_FEAT_%s' % f.upper() for f in
                               m.features if f in ('deprecated', 'unstable'))
            out += '    [%s] = %s,\n' % (typ.const(m.name), flags)
        out += '};\n\n'
    out += 'const QEnumLookup %s_lookup = {\n' % typ.c_name()
    out += '    .array = %s_names,\n' % typ.c_name()
    if feats:
        out += '    .special_features = %s_features,\n' % typ.c_name()
    out += '    .size = %s,\n};\n\n' % typ.max_const()
    return out


def gen_struct_h(typ):
    name = typ.c_name()
    if isinstance(typ, ArrayType):
        return mcgen('''
struct %(name)s {
    %(name)s *next;
    %(elt)svalue;
};

''', name=name, elt=_space(typ.element.c_type()))
    if isinstance(typ, AlternateType):
        out = 'struct %s {\n    QType type;\n    union { /* union tag is @type */\n' % name
        for m in typ.variants:
            ctype = m.type.c_name() if isinstance(m.type, ObjectType) \
                else m.type.c_type()
            out += '        %s%s;\n' % (_space(ctype), m.c_name())
        out += '    } u;\n};\n\n'
        return out
    out = 'struct %s {\n' % name
    members = typ.members()
    if typ.base:
        out += '    /* Members inherited from %s: */\n' % typ.base.c_name()
        out += gen_member_decls(typ.base.members())
        if typ.local_members:
            out += '    /* Own members: */\n'
    out += gen_member_decls(typ.local_members)
    if typ.variants:
        out += '    union { /* union tag is @%s */\n' % c_name(typ.tag_name)
        for case, _, vt in typ.variants:
            out += '        %s %s;\n' % (vt.c_name(), c_name(case))
        out += '    } u;\n'
    if not members and not typ.variants:
        out += '    /* empty struct: C needs a member */\n'
        out += '    char qapi_dummy_for_empty_struct;\n'
    out += '};\n\n'
    if typ.base and not typ.is_implicit:
        out += mcgen('''
static inline %(base)s *qapi_%(name)s_base(const %(name)s *obj)
{
    return (%(base)s *)obj;
}

''', name=name, base=typ.base.c_name())
    return out


def gen_free_h(typ):
    name = typ.c_name()
    out = 'void qapi_free_%s(%s *obj);\n' % (name, name)
    out += 'G_DEFINE_AUTOPTR_CLEANUP_FUNC(%s, qapi_free_%s)\n\n' % (name,
                                                                    name)
    return out


def gen_free_c(typ):
    return mcgen('''
void qapi_free_%(name)s(%(name)s *obj)
{
    Visitor *v;

    if (!obj) {
        return;
    }

    v = qapi_dealloc_visitor_new();
    visit_type_%(name)s(v, NULL, &obj, NULL);
    visit_free(v);
}

''', name=typ.c_name())


class ModuleGen:
    """Collects the C types and visitors of a set of types."""

    def __init__(self, schema, prefix, builtin):
        self.schema = schema
        self.prefix = prefix
        self.builtin = builtin
        if builtin:
            self.enums = []
            self.objs = []
            self.arrays = schema.array_types(True)
            self.basename = 'qapi-builtin'
        else:
            user = schema.user_types()
            self.enums = [t for t in user if isinstance(t, EnumType)]
            self.objs = [t for t in user
                         if isinstance(t, (ObjectType, AlternateType))] + \
                schema.implicit_types()
            self.arrays = schema.array_types(False)
            self.basename = prefix + 'qapi'

    def _header_includes(self, kind):
        if self.builtin:
            if kind == 'types':
                return '#include "qapi/util.h"\n#include "qapi/visitor.h"\n'
            return '#include "qapi/visitor.h"\n#include "qapi-builtin-types.h"\n'
        if kind == 'types':
            return '#include "qapi-builtin-types.h"\n'
        return ('#include "qapi-builtin-visit.h"\n#include "%s-types.h"\n'
                % self.basename)

    def _wrap_h(self, fname, kind, body, what):
        guard = _guard(fname)
        return ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py from %s,'
                ' DO NOT MODIFY */\n/* %s */\n\n#ifndef %s\n#define %s\n\n'
                '#include "qemu/osdep.h"\n%s\n%s#endif /* %s */\n'
                % (self.schema.fname, what, guard, guard,
                   self._header_includes(kind), body, guard))

    def types_h(self):
        body = ''
        for t in self.objs + self.arrays:
            body += 'typedef struct %s %s;\n' % (t.c_name(), t.c_name())
        body += '\n'
        for t in self.enums:
            body += gen_enum_h(t)
        for t in type_decl_order(self.objs + self.arrays):
            body += gen_struct_h(t)
        for t in self.objs + self.arrays:
            if not getattr(t, 'is_implicit', False):
                body += gen_free_h(t)
        return self._wrap_h(self.basename + '-types.h', 'types', body,
                            'Schema-defined QAPI types')

    def types_c(self):
        out = ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py, '
               'DO NOT MODIFY */\n\n#include "qemu/osdep.h"\n'
               '#include "qapi/dealloc-visitor.h"\n'
               '#include "%s-types.h"\n#include "%s-visit.h"\n\n'
               % (self.basename, self.basename))
        for t in self.enums:
            out += gen_enum_c(t)
        for t in self.objs + self.arrays:
            if not getattr(t, 'is_implicit', False):
                out += gen_free_c(t)
        return out

    def visit_h(self):
        body = ''
        for t in self.enums:
            body += ('bool visit_type_%s(Visitor *v, const char *name, '
                     '%s *obj, Error **errp);\n' % (t.c_name(), t.c_name()))
        for t in self.objs:
            if isinstance(t, ObjectType):
                body += ('bool visit_type_%s_members(Visitor *v, %s *obj, '
                         'Error **errp);\n' % (t.c_name(), t.c_name()))
            if not getattr(t, 'is_implicit', False):
                body += ('bool visit_type_%s(Visitor *v, const char *name, '
                         '%s **obj, Error **errp);\n'
                         % (t.c_name(), t.c_name()))
        for t in self.arrays:
            body += ('bool visit_type_%s(Visitor *v, const char *name, '
                     '%s **obj, Error **errp);\n' % (t.c_name(), t.c_name()))
        return self._wrap_h(self.basename + '-visit.h', 'visit', body + '\n',
                            'Schema-defined QAPI visitors')

    def visit_c(self):
        out = ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py, '
               'DO NOT MODIFY */\n\n#include "qemu/osdep.h"\n'
               '#include "%s-visit.h"\n\n' % self.basename)
        for t in self.enums:
            out += gen_visit_enum(t)
        for t in self.objs:
            if isinstance(t, ObjectType):
                out += gen_visit_members(t)
                if not t.is_implicit:
                    out += gen_visit_object(t)
            else:
                out += gen_visit_alternate(t)
        for t in self.arrays:
            out += gen_visit_list(t)
        return out


def gen_visit_enum(typ):
    return mcgen('''
bool visit_type_%(name)s(Visitor *v, const char *name, %(name)s *obj,
    Error **errp)
{
    int value = *obj;
    bool ok = visit_type_enum(v, name, &value, &%(name)s_lookup, errp);

    *obj = value;
    return ok;
}

''', name=typ.c_name())


def gen_visit_member(m, ptr='obj->'):
    """Code visiting member m of *obj; returns false on error."""
    visit = '%s(v, "%s", &%s%s, errp)' % (m.type.visit_fn(), m.name, ptr,
                                          m.c_name())
    if not m.optional:
        return mcgen('''
    if (!%(visit)s) {
        return false;
    }
''', visit=visit)
    flag = '&obj->has_%s' % m.c_name() if m.need_has() \
        else '&has_%s' % m.c_name()
    return mcgen('''
    if (visit_optional(v, "%(name)s", %(flag)s)) {
        if (!%(visit)s) {
            return false;
        }
    }
''', name=m.name, flag=flag, visit=visit)


def gen_visit_members(typ):
    name = typ.c_name()
    out = 'bool visit_type_%s_members(Visitor *v, %s *obj, Error **errp)\n{\n' % (name, name)
    for m in typ.local_members:
        if m.optional and not m.need_has():
            out += '    bool has_%s = !!obj->%s;\n' % (m.c_name(), m.c_name())
    if any(m.optional and not m.need_has() for m in typ.local_members):
        out += '\n'
    if typ.base:
        out += mcgen('''
    if (!visit_type_%(base)s_members(v, (%(base)s *)obj, errp)) {
        return false;
    }
''', base=typ.base.c_name())
    for m in typ.local_members:
        out += gen_visit_member(m)
    if typ.variants:
        out += '    switch (obj->%s) {\n' % c_name(typ.tag_name)
        enum = typ.tag_member.type
        cases = {case: vt for case, _, vt in typ.variants}
        for value in enum.member_names():
            out += '    case %s:\n' % enum.const(value)
            if value in cases:
                out += ('        return visit_type_%s_members(v, &obj->u.%s, '
                        'errp);\n' % (cases[value].c_name(), c_name(value)))
            else:
                out += '        break;\n'
        out += '    default:\n        abort();\n    }\n'
    out += '    return true;\n}\n\n'
    return out


def gen_visit_object(typ):
    return mcgen('''
bool visit_type_%(name)s(Visitor *v, const char *name, %(name)s **obj,
    Error **errp)
{
    bool ok = false;

    if (!visit_start_struct(v, name, (void **)obj, sizeof(%(name)s), errp)) {
        return false;
    }
    if (!*obj) {
        /* incomplete object, only possible when freeing */
        assert(visit_is_dealloc(v));
        ok = true;
        goto out_obj;
    }
    if (!visit_type_%(name)s_members(v, *obj, errp)) {
        goto out_obj;
    }
    ok = visit_check_struct(v, errp);
out_obj:
    visit_end_struct(v, (void **)obj);
    if (!ok && visit_is_input(v)) {
        qapi_free_%(name)s(*obj);
        *obj = NULL;
    }
    return ok;
}

''', name=typ.c_name())


def gen_visit_alternate(typ):
    name = typ.c_name()
    out = mcgen('''
bool visit_type_%(name)s(Visitor *v, const char *name, %(name)s **obj,
    Error **errp)
{
    bool ok = false;

    if (!visit_start_alternate(v, name, (GenericAlternate **)obj,
                               sizeof(**obj), errp)) {
        return false;
    }
    if (!*obj) {
        /* incomplete object, only possible when freeing */
        assert(visit_is_dealloc(v));
        ok = true;
        goto out_obj;
    }
    switch ((*obj)->type) {
''', name=name)
    for m in typ.variants:
        out += '    case %s:\n' % m.type.qtype()
        if isinstance(m.type, ObjectType):
            out += mcgen('''
        if (!visit_start_struct(v, name, NULL, 0, errp)) {
            break;
        }
        if (visit_type_%(t)s_members(v, &(*obj)->u.%(m)s, errp)) {
            ok = visit_check_struct(v, errp);
        }
        visit_end_struct(v, NULL);
        break;
''', t=m.type.c_name(), m=m.c_name())
        else:
            out += ('        ok = %s(v, name, &(*obj)->u.%s, errp);\n'
                    '        break;\n' % (m.type.visit_fn(), m.c_name()))
    out += mcgen('''
    case QTYPE_NONE:
        abort();
    default:
        assert(visit_is_input(v));
        error_setg(errp, "Invalid parameter type for '%%s', expected: %%s",
                   name ? name : "null", "%(name)s");
        /* Avoid passing an invalid *obj to qapi_free_%(name)s() */
        g_free(*obj);
        *obj = NULL;
    }
out_obj:
    visit_end_alternate(v, (void **)obj);
    if (!ok && visit_is_input(v)) {
        qapi_free_%(name)s(*obj);
        *obj = NULL;
    }
    return ok;
}

''', name=name)
    return out


def gen_visit_list(typ):
    return mcgen('''
bool visit_type_%(name)s(Visitor *v, const char *name, %(name)s **obj,
    Error **errp)
{
    bool ok = false;
    %(name)s *tail;
    size_t size = sizeof(**obj);

    if (!visit_start_list(v, name, (GenericList **)obj, size, errp)) {
        return false;
    }

    for (tail = *obj; tail;
         tail = (%(name)s *)visit_next_list(v, (GenericList *)tail, size)) {
        if (!%(visit)s(v, NULL, &tail->value, errp)) {
            goto out_obj;
        }
    }

    ok = visit_check_list(v, errp);
out_obj:
    visit_end_list(v, (void **)obj);
    if (!ok && visit_is_input(v)) {
        qapi_free_%(name)s(*obj);
        *obj = NULL;
    }
    return ok;
}

''', name=typ.c_name(), visit=typ.element.visit_fn())
