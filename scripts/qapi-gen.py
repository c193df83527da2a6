#!/usr/bin/env python3
"""
qapi-gen.py: generate C code and documentation from a QAPI schema.

Usage: qapi-gen.py [-o DIR] [-p PREFIX] [-b] [--doc FILE] SCHEMA

Writes into DIR:
  PREFIXqapi-types.{c,h}       C types, enum lookup tables, qapi_free_*
  PREFIXqapi-visit.{c,h}       visit_type_* for every type
  PREFIXqapi-commands.h        qmp_* handler and qmp_marshal_* prototypes
  PREFIXqapi-commands-MOD.{c,h} marshalers of schema module MOD (file
                               MOD.json) and PREFIXqmp_init_marshal_MOD()
  PREFIXqapi-commands.c        PREFIXqmp_init_marshal(): every module
  PREFIXqapi-events.{c,h}      qapi_event_send_*
  PREFIXqapi-introspect.{c,h}  PREFIXqmp_schema_json() for query-qmp-schema
With -b also qapi-builtin-types.{c,h} and qapi-builtin-visit.{c,h} (lists
of builtin types: strList, intList, ...), which every schema's code uses;
generate them once, with the main schema.
--doc FILE writes the Markdown reference built from the doc comments.
Files whose content did not change are not rewritten (keeps make quiet).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from qapi.parser import QAPIError  # noqa: E402
from qapi.schema import Schema  # noqa: E402
from qapi import commands, doc, introspect, types  # noqa: E402


def write(path, text):
    try:
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return
    except OSError:
        pass
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description='QAPI code generator')
    ap.add_argument('-o', '--output-dir', default='.')
    ap.add_argument('-p', '--prefix', default='')
    ap.add_argument('-b', '--builtins', action='store_true')
    ap.add_argument('--doc', help='write the Markdown reference here')
    ap.add_argument('--doc-title', default='blockd QMP reference')
    ap.add_argument('schema')
    args = ap.parse_args()

    try:
        schema = Schema(args.schema)
    except QAPIError as e:
        print('qapi-gen: %s' % e, file=sys.stderr)
        return 1

    out = args.output_dir
    os.makedirs(out, exist_ok=True)
    prefix = args.prefix
    base = prefix + 'qapi'

    mods = [types.ModuleGen(schema, prefix, False)]
    if args.builtins:
        mods.append(types.ModuleGen(schema, prefix, True))
    for mod in mods:
        write(os.path.join(out, mod.basename + '-types.h'), mod.types_h())
        write(os.path.join(out, mod.basename + '-types.c'), mod.types_c())
        write(os.path.join(out, mod.basename + '-visit.h'), mod.visit_h())
        write(os.path.join(out, mod.basename + '-visit.c'), mod.visit_c())
    for mod in commands.schema_modules(schema):
        write(os.path.join(out, '%s-commands-%s.c' % (base, mod)),
              commands.commands_c(schema, prefix, base, mod))
        write(os.path.join(out, '%s-commands-%s.h' % (base, mod)),
              commands.commands_module_h(schema, prefix, base, mod))
    for name, gen in (('commands.h', commands.commands_h),
                      ('commands.c', commands.commands_init_c),
                      ('events.h', commands.events_h),
                      ('events.c', commands.events_c),
                      ('introspect.h', introspect.introspect_h),
                      ('introspect.c', introspect.introspect_c)):
        write(os.path.join(out, '%s-%s' % (base, name)),
              gen(schema, prefix, base))
    if args.doc:
        write(args.doc, doc.generate(schema, args.doc_title))
    return 0


if __name__ == '__main__':
    sys.exit(main())
