"""
The QAPI schema model: turns parsed expressions into entities (builtin,
enum, object, alternate, array types; commands; events), resolves type
references and checks the rules the generators rely on.

Supported: 'enum' (with 'prefix'), 'struct' (with 'base'), flat 'union'
('base' + 'discriminator' + 'data' branches), 'alternate', 'command'
('data', 'returns', 'boxed', 'allow-preconfig', 'allow-oob', 'coroutine',
'success-response', 'gen'), 'event' ('data', 'boxed'), optional members
'*name', member dicts {'type': ..., 'features': ...}, 'features' with
special features 'deprecated'/'unstable'.  'if' conditions are accepted
and ignored (blockd has no build-time configuration of its QMP surface).
"""

from .common import c_name, c_enum_const
from .parser import QAPIError, Parser

# name -> (C type, JSON type used by introspection, visit function suffix)
BUILTINS = [
    ('str', 'char *', 'string'),
    ('number', 'double', 'number'),
    ('int', 'int64_t', 'int'),
    ('int8', 'int8_t', 'int'),
    ('int16', 'int16_t', 'int'),
    ('int32', 'int32_t', 'int'),
    ('int64', 'int64_t', 'int'),
    ('uint8', 'uint8_t', 'int'),
    ('uint16', 'uint16_t', 'int'),
    ('uint32', 'uint32_t', 'int'),
    ('uint64', 'uint64_t', 'int'),
    ('size', 'uint64_t', 'int'),
    ('bool', 'bool', 'boolean'),
    ('any', 'json_t *', 'value'),
    ('null', 'QNull *', 'null'),
]

SPECIAL_FEATURES = ('deprecated', 'unstable')


class Entity:
    meta = None

    def __init__(self, name, info, doc=None, features=()):
        self.name = name
        self.info = info
        self.doc = doc
        self.features = list(features)
        self.builtin = info is None

    def c_name(self):
        return c_name(self.name)

    def has_feature(self, fname):
        return fname in self.features

    def special_features_c(self):
        flags = ['QAPI_FEAT_%s' % f.upper() for f in SPECIAL_FEATURES
                 if f in self.features]
        return ' | '.join(flags) if flags else '0'


class Type(Entity):
    def c_type(self):
        """C type of a member/variable of this type."""
        raise NotImplementedError

    def c_param_type(self):
        return self.c_type()

    def json_type(self):
        raise NotImplementedError

    def is_pointer(self):
        return self.c_type().endswith('*')

    def need_has_if_optional(self):
        # QEMU >= 7.1: pointer-typed optional members need no has_ flag
        return not self.is_pointer()

    def qtype(self):
        """QTYPE_* constant an alternate branch of this type matches."""
        return {
            'string': 'QTYPE_QSTRING', 'number': 'QTYPE_QNUM',
            'int': 'QTYPE_QNUM', 'boolean': 'QTYPE_QBOOL',
            'null': 'QTYPE_QNULL', 'object': 'QTYPE_QDICT',
            'array': 'QTYPE_QLIST',
        }[self.json_type()]


class BuiltinType(Type):
    meta = 'builtin'

    def __init__(self, name, ctype, jtype):
        super().__init__(name, None)
        self._ctype = ctype
        self._jtype = jtype

    def c_type(self):
        return self._ctype

    def c_param_type(self):
        return 'const char *' if self.name == 'str' else self._ctype

    def json_type(self):
        return self._jtype

    def visit_fn(self):
        return 'visit_type_' + self.name


class EnumType(Type):
    meta = 'enum'

    def __init__(self, name, info, doc, features, members, prefix):
        super().__init__(name, info, doc, features)
        self.members = members          # list of EnumMember
        self.prefix = prefix

    def c_type(self):
        return self.c_name()

    def json_type(self):
        return 'string'

    def is_pointer(self):
        return False

    def member_names(self):
        return [m.name for m in self.members]

    def const(self, value):
        return c_enum_const(self.name, value, self.prefix)

    def max_const(self):
        return c_enum_const(self.name, '_MAX', self.prefix)

    def visit_fn(self):
        return 'visit_type_' + self.c_name()


class EnumMember:
    def __init__(self, name, features=()):
        self.name = name
        self.features = list(features)


class ArrayType(Type):
    meta = 'array'

    def __init__(self, element_name, info):
        super().__init__(element_name + 'List', info)
        self.element_name = element_name
        self.element = None
        self.builtin = False

    def resolve(self, schema):
        self.element = schema.lookup_type(self.element_name, self.info)
        self.builtin = self.element.builtin

    def c_type(self):
        return self.c_name() + ' *'

    def json_type(self):
        return 'array'

    def intro_name(self):
        return '[%s]' % self.element.name

    def visit_fn(self):
        return 'visit_type_' + self.c_name()


class Member:
    def __init__(self, name, type_name, optional, info, features=()):
        self.name = name
        self.type_name = type_name
        self.optional = optional
        self.info = info
        self.features = list(features)
        self.type = None

    def c_name(self):
        return c_name(self.name)

    def need_has(self):
        return self.optional and self.type.need_has_if_optional()


class ObjectType(Type):
    """A struct, a flat union, or an implicit (command/event/base) type."""
    meta = 'object'

    def __init__(self, name, info, doc, features, base_name, members,
                 tag_name=None, variants=None, is_implicit=False):
        super().__init__(name, info, doc, features)
        self.base_name = base_name
        self.base = None
        self.local_members = members
        self.tag_name = tag_name
        self.tag_member = None
        self.variants = variants          # list of (case, type_name, type)
        self.is_implicit = is_implicit
        self._resolved = False

    def resolve(self, schema):
        if self._resolved:
            return
        self._resolved = True
        if self.base_name:
            base = schema.lookup_type(self.base_name, self.info)
            if not isinstance(base, ObjectType) or base.variants:
                raise QAPIError(self.info, "'base' must be a struct type")
            base.resolve(schema)
            self.base = base
        for m in self.local_members:
            m.type = schema.lookup_type(m.type_name, m.info)
        seen = set()
        for m in self.members():
            if c_name(m.name) in seen:
                raise QAPIError(self.info, "member '%s' clashes" % m.name)
            seen.add(c_name(m.name))
        if self.variants is not None:
            tags = [m for m in self.members() if m.name == self.tag_name]
            if not tags:
                raise QAPIError(self.info, "discriminator '%s' is not a "
                                "member of 'base'" % self.tag_name)
            self.tag_member = tags[0]
            if not isinstance(self.tag_member.type, EnumType) or \
                    self.tag_member.optional:
                raise QAPIError(self.info, "discriminator must be a "
                                "required enum member")
            values = self.tag_member.type.member_names()
            resolved = []
            for case, tname, _ in self.variants:
                if case not in values:
                    raise QAPIError(self.info, "branch '%s' is not a value "
                                    "of %s" % (case, self.tag_member.type.name))
                vt = schema.lookup_type(tname, self.info)
                if not isinstance(vt, ObjectType) or vt.variants:
                    raise QAPIError(self.info, "branch '%s' must be a "
                                    "struct type" % case)
                vt.resolve(schema)
                resolved.append((case, tname, vt))
            self.variants = resolved

    def members(self):
        """All members in C layout order: base members first."""
        base = self.base.members() if self.base else []
        return base + self.local_members

    def c_type(self):
        return self.c_name() + ' *'

    def json_type(self):
        return 'object'

    def is_empty(self):
        return not self.members() and not self.variants

    def visit_fn(self):
        return 'visit_type_' + self.c_name()


class AlternateType(Type):
    meta = 'alternate'

    def __init__(self, name, info, doc, features, variants):
        super().__init__(name, info, doc, features)
        self.variants = variants          # list of Member (never optional)

    def resolve(self, schema):
        seen = {}
        for m in self.variants:
            m.type = schema.lookup_type(m.type_name, m.info)
            qt = m.type.qtype()
            if qt in seen:
                raise QAPIError(self.info, "branches '%s' and '%s' of "
                                "alternate %s can't be distinguished"
                                % (seen[qt], m.name, self.name))
            seen[qt] = m.name

    def c_type(self):
        return self.c_name() + ' *'

    def json_type(self):
        return 'value'

    def qtype(self):
        raise QAPIError(self.info, 'alternate in alternate')

    def visit_fn(self):
        return 'visit_type_' + self.c_name()


class Command(Entity):
    meta = 'command'

    def __init__(self, name, info, doc, features, arg_type_name, ret_name,
                 boxed, options, gen=True):
        super().__init__(name, info, doc, features)
        self.arg_type_name = arg_type_name
        self.arg_type = None
        self.ret_name = ret_name
        self.ret_type = None
        self.boxed = boxed
        self.options = options            # dict of flags
        self.gen = gen

    def resolve(self, schema):
        if self.arg_type_name:
            self.arg_type = schema.lookup_type(self.arg_type_name, self.info)
            if not isinstance(self.arg_type, ObjectType):
                raise QAPIError(self.info, "'data' must be an object type")
            if self.arg_type.variants and not self.boxed:
                raise QAPIError(self.info, "a union as 'data' needs "
                                "'boxed': true")
        if self.ret_name:
            self.ret_type = schema.lookup_type(self.ret_name, self.info)


class Event(Entity):
    meta = 'event'

    def __init__(self, name, info, doc, features, arg_type_name, boxed):
        super().__init__(name, info, doc, features)
        self.arg_type_name = arg_type_name
        self.arg_type = None
        self.boxed = boxed

    def resolve(self, schema):
        if self.arg_type_name:
            self.arg_type = schema.lookup_type(self.arg_type_name, self.info)


def _features(info, expr):
    out = []
    for f in expr.get('features', []):
        if isinstance(f, dict):
            f = f['name']
        if not isinstance(f, str):
            raise QAPIError(info, "invalid feature")
        out.append(f)
    return out


class Schema:
    def __init__(self, fname):
        parser = Parser(fname).parse()
        self.fname = fname
        self.files = sorted(parser.included)  # the main file and includes
        self.entities = []                # definitions in schema order
        self.types = {}
        self.free_docs = parser.free_docs
        self.exprs = parser.exprs
        for name, ctype, jtype in BUILTINS:
            self._def_type(BuiltinType(name, ctype, jtype))
        for name, _, _ in BUILTINS:
            self._array(name, None)
        for expr, info, doc in parser.exprs:
            self._def_expr(expr, info, doc)
        for ent in list(self.types.values()):
            if isinstance(ent, ArrayType):
                ent.resolve(self)
        for ent in self.entities:
            if hasattr(ent, 'resolve'):
                ent.resolve(self)
        for ent in list(self.types.values()):
            if isinstance(ent, ObjectType):
                ent.resolve(self)
        for ent in list(self.types.values()):
            if isinstance(ent, ArrayType) and ent.element is None:
                ent.resolve(self)

    # -- definition helpers -------------------------------------------------
    def _def_type(self, typ):
        if typ.name in self.types:
            raise QAPIError(typ.info, "'%s' is already defined" % typ.name)
        self.types[typ.name] = typ
        return typ

    def _array(self, element_name, info):
        name = element_name + 'List'
        if name not in self.types:
            self.types[name] = ArrayType(element_name, info)
        return name

    def _type_ref(self, info, value):
        """A member type: 'name' or ['name']; returns a type name."""
        if isinstance(value, list):
            if len(value) != 1 or not isinstance(value[0], str):
                raise QAPIError(info, "array type must have one element")
            return self._array(value[0], info)
        if not isinstance(value, str):
            raise QAPIError(info, "type must be a name or [name]")
        return value

    def _members(self, info, data):
        out = []
        if not isinstance(data, dict):
            raise QAPIError(info, "'data' must be an object")
        for key, value in data.items():
            features = []
            if isinstance(value, dict):
                features = _features(info, value)
                value = value['type']
            optional = key.startswith('*')
            name = key[1:] if optional else key
            out.append(Member(name, self._type_ref(info, value), optional,
                              info, features))
        return out

    def _implicit(self, name, info, data):
        typ = ObjectType(name, info, None, [], None,
                         self._members(info, data), is_implicit=True)
        self._def_type(typ)
        return name

    def _def_expr(self, expr, info, doc):
        for meta in ('enum', 'struct', 'union', 'alternate', 'command',
                     'event'):
            if meta in expr:
                break
        else:
            raise QAPIError(info, "expression of unknown kind")
        name = expr[meta]
        features = _features(info, expr)
        if doc and doc.symbol != name:
            raise QAPIError(info, "documentation comment is for '%s', not "
                            "'%s'" % (doc.symbol, name))
        if meta == 'enum':
            members = []
            for v in expr['data']:
                if isinstance(v, dict):
                    members.append(EnumMember(v['name'], _features(info, v)))
                else:
                    members.append(EnumMember(v))
            ent = EnumType(name, info, doc, features, members,
                           expr.get('prefix'))
            self._def_type(ent)
        elif meta == 'struct':
            ent = ObjectType(name, info, doc, features, expr.get('base'),
                             self._members(info, expr.get('data', {})))
            self._def_type(ent)
        elif meta == 'union':
            base = expr.get('base')
            if isinstance(base, dict):
                base = self._implicit('q_obj_%s-base' % name, info, base)
            if not base or 'discriminator' not in expr:
                raise QAPIError(info, "union needs 'base' and "
                                "'discriminator' (only flat unions exist)")
            variants = []
            for case, value in expr['data'].items():
                if isinstance(value, dict):
                    value = value['type']
                variants.append((case, value, None))
            ent = ObjectType(name, info, doc, features, base, [],
                             expr['discriminator'], variants)
            self._def_type(ent)
        elif meta == 'alternate':
            variants = []
            for key, value in expr['data'].items():
                if isinstance(value, dict):
                    value = value['type']
                variants.append(Member(key, self._type_ref(info, value),
                                       False, info))
            ent = AlternateType(name, info, doc, features, variants)
            self._def_type(ent)
        elif meta == 'command':
            data = expr.get('data')
            if isinstance(data, dict):
                data = self._implicit('q_obj_%s-arg' % name, info, data)
            ret = expr.get('returns')
            if ret is not None:
                ret = self._type_ref(info, ret)
            options = {k: bool(expr.get(k, False)) for k in
                       ('allow-oob', 'allow-preconfig', 'coroutine')}
            options['success-response'] = expr.get('success-response', True)
            ent = Command(name, info, doc, features, data, ret,
                          bool(expr.get('boxed', False)), options,
                          expr.get('gen', True))
        else:
            data = expr.get('data')
            if isinstance(data, dict):
                data = self._implicit('q_obj_%s-arg' % name, info, data)
            ent = Event(name, info, doc, features, data,
                        bool(expr.get('boxed', False)))
        self.entities.append(ent)

    def lookup_type(self, name, info):
        typ = self.types.get(name)
        if typ is None:
            raise QAPIError(info, "use of undefined type '%s'" % name)
        return typ

    # -- queries for the generators ---------------------------------------
    def user_types(self):
        return [e for e in self.entities if isinstance(e, Type)]

    def implicit_types(self):
        return [t for t in self.types.values()
                if isinstance(t, ObjectType) and t.is_implicit]

    def array_types(self, builtin):
        return [t for t in self.types.values()
                if isinstance(t, ArrayType) and t.builtin == builtin]

    def commands(self):
        return [e for e in self.entities if isinstance(e, Command)]

    def events(self):
        return [e for e in self.entities if isinstance(e, Event)]
