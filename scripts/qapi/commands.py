"""
Generate qapi-commands.{c,h} and qapi-events.{c,h}.

For each command FOO the header declares the hand-written handler
  RetType qmp_FOO(args..., Error **errp)     (or qmp_FOO(Type *arg, errp)
                                               with 'boxed': true)
and the generated marshaler
  void qmp_marshal_FOO(json_t *args, json_t **ret, Error **errp)
which input-visits @args strictly, calls the handler and output-visits the
return value.  PREFIXqmp_init_marshal(QmpCommandList *) registers all
marshalers with their options and special features.

For each event BAR the header declares
  void qapi_event_send_BAR(args...)
which builds the data object and passes it to qapi_event_emit().
"""

import os

from .common import c_name, mcgen
from .schema import ObjectType


def _space(ctype):
    return ctype if ctype.endswith('*') else ctype + ' '


def param_list(arg_type, boxed, with_errp):
    """The C parameter list for a handler or an event sender."""
    params = []
    if arg_type is not None:
        if boxed:
            params.append('%s *arg' % arg_type.c_name())
        else:
            for m in arg_type.members():
                if m.need_has():
                    params.append('bool has_%s' % m.c_name())
                params.append('%s%s' % (_space(m.type.c_param_type()),
                                        m.c_name()))
    if with_errp:
        params.append('Error **errp')
    return ', '.join(params) if params else 'void'


def handler_args(arg_type, boxed):
    """Arguments passed from a marshaler's 'arg' to the handler."""
    args = []
    if arg_type is not None:
        if boxed:
            args.append('&arg')
        else:
            for m in arg_type.members():
                if m.need_has():
                    args.append('arg.has_%s' % m.c_name())
                args.append('arg.%s' % m.c_name())
    args.append('&err')
    return ', '.join(args)


def ret_c_type(cmd):
    return cmd.ret_type.c_type() if cmd.ret_type else 'void'


def gen_handler_decl(cmd):
    return '%s%s(%s);\n' % (_space(ret_c_type(cmd)),
                            'qmp_' + c_name(cmd.name),
                            param_list(cmd.arg_type, cmd.boxed, True))


def gen_output_fn(ret_type):
    return mcgen('''
static void qmp_marshal_output_%(c)s(%(ctype)sret_in, json_t **ret_out,
    Error **errp)
{
    Visitor *v;

    v = qobject_output_visitor_new(ret_out);
    if (%(visit)s(v, "unused", &ret_in, errp)) {
        visit_complete(v, ret_out);
    }
    visit_free(v);
    v = qapi_dealloc_visitor_new();
    %(visit)s(v, "unused", &ret_in, NULL);
    visit_free(v);
}

''', c=ret_type.c_name(), ctype=_space(ret_type.c_type()),
        visit=ret_type.visit_fn())


def gen_marshal(cmd):
    name = c_name(cmd.name)
    out = 'void qmp_marshal_%s(json_t *args, json_t **ret, Error **errp)\n{\n' % name
    out += '    Error *err = NULL;\n    bool ok = false;\n    Visitor *v;\n'
    if cmd.ret_type:
        ctype = cmd.ret_type.c_type()
        init = ' = 0' if not ctype.endswith('*') else ' = NULL'
        if ctype == 'bool':
            init = ' = false'
        out += '    %sretval%s;\n' % (_space(ctype), init)
    at = cmd.arg_type
    if at is not None:
        out += '    %s arg = {0};\n' % at.c_name()
    out += '\n    v = qobject_input_visitor_new(args);\n'
    out += mcgen('''
    if (!visit_start_struct(v, NULL, NULL, 0, errp)) {
        goto out;
    }
''')
    if at is not None:
        out += mcgen('''
    if (visit_type_%(t)s_members(v, &arg, errp)) {
        ok = visit_check_struct(v, errp);
    }
''', t=at.c_name())
    else:
        out += '    ok = visit_check_struct(v, errp);\n'
    out += mcgen('''
    visit_end_struct(v, NULL);
    if (!ok) {
        goto out;
    }

''')
    call = 'qmp_%s(%s)' % (name, handler_args(at, cmd.boxed))
    if cmd.ret_type:
        out += '    retval = %s;\n' % call
    else:
        out += '    %s;\n' % call
    out += mcgen('''
    if (err) {
        error_propagate(errp, err);
        goto out;
    }
''')
    if cmd.ret_type:
        out += '\n    qmp_marshal_output_%s(retval, ret, errp);\n' % \
            cmd.ret_type.c_name()
    out += '\nout:\n    visit_free(v);\n'
    if at is not None:
        out += mcgen('''
    v = qapi_dealloc_visitor_new();
    visit_start_struct(v, NULL, NULL, 0, NULL);
    visit_type_%(t)s_members(v, &arg, NULL);
    visit_end_struct(v, NULL);
    visit_free(v);
''', t=at.c_name())
    out += '}\n\n'
    return out


def module_name(fname):
    """The module of a schema file: its basename without .json."""
    return os.path.splitext(os.path.basename(fname))[0]


def schema_modules(schema):
    """Every schema file (the main one and all it includes), sorted."""
    return sorted({module_name(f) for f in schema.files})


def init_fn(prefix, module=None):
    suffix = '_' + c_name(module) if module else ''
    return '%sqmp_init_marshal%s' % (c_name(prefix, False), suffix)


def commands_h(schema, prefix, basename):
    guard = c_name(basename + '-commands.h', False).upper()
    body = ''
    for cmd in schema.commands():
        if not cmd.gen:
            continue
        body += gen_handler_decl(cmd)
        body += ('void qmp_marshal_%s(json_t *args, json_t **ret, '
                 'Error **errp);\n' % c_name(cmd.name))
    body += ('\n/*\n * One registration function per schema module: a '
             'program registers the\n * modules it implements; only '
             'their marshalers (and so their\n * qmp_* handlers) are '
             'linked in.\n */\n')
    for mod in schema_modules(schema):
        body += 'void %s(QmpCommandList *cmds);\n' % init_fn(prefix, mod)
    body += '/* All modules (tests with a complete set of handlers). */\n'
    body += 'void %s(QmpCommandList *cmds);\n' % init_fn(prefix)
    return ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py from %s, DO '
            'NOT MODIFY */\n/* Schema-defined QAPI/QMP commands */\n\n'
            '#ifndef %s\n#define %s\n\n#include "qemu/osdep.h"\n'
            '#include "qapi/qmp-dispatch.h"\n#include "%s-types.h"\n\n%s\n'
            '#endif /* %s */\n' % (schema.fname, guard, guard, basename, body,
                                   guard))


def commands_module_h(schema, prefix, basename, module):
    guard = c_name('%s-commands-%s.h' % (basename, module), False).upper()
    return ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py, DO NOT '
            'MODIFY */\n/* Commands of schema module %s */\n\n'
            '#ifndef %s\n#define %s\n\n#include "%s-commands.h"\n\n'
            '#endif /* %s */\n' % (module, guard, guard, basename, guard))


def commands_init_c(schema, prefix, basename):
    """PREFIXqmp_init_marshal(): registers every module."""
    calls = ''.join('    %s(cmds);\n' % init_fn(prefix, mod)
                    for mod in schema_modules(schema))
    return ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py, DO NOT '
            'MODIFY */\n\n#include "qemu/osdep.h"\n'
            '#include "%s-commands.h"\n\n'
            'void %s(QmpCommandList *cmds)\n{\n%s}\n'
            % (basename, init_fn(prefix), calls))


def commands_c(schema, prefix, basename, module):
    """Marshalers of one schema module and its registration function."""
    out = ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py, DO NOT '
           'MODIFY */\n\n#include "qemu/osdep.h"\n'
           '#include "qapi/qobject-input-visitor.h"\n'
           '#include "qapi/qobject-output-visitor.h"\n'
           '#include "qapi/dealloc-visitor.h"\n'
           '#include "%s-visit.h"\n#include "%s-commands.h"\n'
           '#include "%s-introspect.h"\n\n'
           % (basename, basename, basename))
    done = set()
    cmds = [cmd for cmd in schema.commands()
            if module_name(cmd.info.fname) == module]
    for cmd in cmds:
        if cmd.gen and cmd.ret_type and cmd.ret_type.name not in done:
            done.add(cmd.ret_type.name)
            out += gen_output_fn(cmd.ret_type)
    reg = ''
    for cmd in cmds:
        if not cmd.gen and cmd.name == 'query-qmp-schema':
            # served from the generated introspection data
            reg += ('    qmp_register_command(cmds, "%s",\n'
                    '                         %sqmp_marshal_query_qmp_schema,'
                    ' QCO_ALLOW_PRECONFIG, %s);\n'
                    % (cmd.name, c_name(prefix, False),
                       cmd.special_features_c()))
            continue
        if not cmd.gen:
            continue
        out += gen_marshal(cmd)
        opts = []
        if not cmd.options['success-response']:
            opts.append('QCO_NO_SUCCESS_RESP')
        if cmd.options['allow-oob']:
            opts.append('QCO_ALLOW_OOB')
        if cmd.options['allow-preconfig']:
            opts.append('QCO_ALLOW_PRECONFIG')
        if cmd.options['coroutine']:
            opts.append('QCO_COROUTINE')
        reg += ('    qmp_register_command(cmds, "%s",\n'
                '                         qmp_marshal_%s, %s, %s);\n'
                % (cmd.name, c_name(cmd.name),
                   ' | '.join(opts) if opts else 'QCO_NO_OPTIONS',
                   cmd.special_features_c()))
    out += 'void %s(QmpCommandList *cmds)\n{\n%s}\n' % (
        init_fn(prefix, module), reg)
    return out


def event_fn_name(ev):
    return 'qapi_event_send_%s' % c_name(ev.name.lower())


def events_h(schema, prefix, basename):
    guard = c_name(basename + '-events.h', False).upper()
    body = ''
    for ev in schema.events():
        body += 'void %s(%s);\n' % (event_fn_name(ev),
                                    param_list(ev.arg_type, ev.boxed, False))
    return ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py from %s, DO '
            'NOT MODIFY */\n/* Schema-defined QAPI/QMP events */\n\n'
            '#ifndef %s\n#define %s\n\n#include "qemu/osdep.h"\n'
            '#include "qapi/qmp-event.h"\n#include "%s-types.h"\n\n%s\n'
            '#endif /* %s */\n' % (schema.fname, guard, guard, basename, body,
                                   guard))


def gen_event(ev):
    out = 'void %s(%s)\n{\n' % (event_fn_name(ev),
                                param_list(ev.arg_type, ev.boxed, False))
    at = ev.arg_type
    if at is None:
        return out + '    qapi_event_emit("%s", NULL);\n}\n\n' % ev.name
    out += '    json_t *data;\n    Visitor *v;\n'
    if ev.boxed:
        out += '    %s *param = arg;\n' % at.c_name()
    else:
        out += '    %s param_storage = {0};\n' % at.c_name()
        out += '    %s *param = &param_storage;\n' % at.c_name()
    out += '\n'
    if not ev.boxed:
        for m in at.members():
            if m.need_has():
                out += '    param->has_%s = has_%s;\n' % (m.c_name(),
                                                          m.c_name())
            cast = '(char *)' if m.type.c_param_type() == 'const char *' \
                else ''
            out += '    param->%s = %s%s;\n' % (m.c_name(), cast, m.c_name())
    out += mcgen('''

    v = qobject_output_visitor_new(&data);
    visit_start_struct(v, "%(name)s", NULL, 0, &error_abort);
    visit_type_%(t)s_members(v, param, &error_abort);
    visit_check_struct(v, &error_abort);
    visit_end_struct(v, NULL);
    visit_complete(v, &data);
    visit_free(v);

    qapi_event_emit("%(name)s", data);
}

''', name=ev.name, t=at.c_name())
    return out


def events_c(schema, prefix, basename):
    out = ('/* AUTOMATICALLY GENERATED by scripts/qapi-gen.py, DO NOT '
           'MODIFY */\n\n#include "qemu/osdep.h"\n'
           '#include "qapi/qobject-output-visitor.h"\n'
           '#include "%s-visit.h"\n#include "%s-events.h"\n\n'
           % (basename, basename))
    for ev in schema.events():
        out += gen_event(ev)
    return out


__all__ = ['commands_h', 'commands_c', 'events_h', 'events_c',
           'ObjectType']
