"""Naming helpers shared by the generators (QEMU's mangling rules)."""

import re

C_KEYWORDS = set('''
auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed
sizeof static struct switch typedef union unsigned void volatile while
_Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn
_Static_assert _Thread_local bool true false asm typeof unix errno
'''.split())


def c_name(name, protect=True):
    """'node-name' -> 'node_name'; keywords get a 'q_' prefix."""
    name = re.sub(r'[^A-Za-z0-9_]', '_', name)
    if protect and (name in C_KEYWORDS or name[0].isdigit()):
        return 'q_' + name
    return name


def camel_to_upper(value):
    """'MirrorSyncMode' -> 'MIRROR_SYNC_MODE', 'QType' -> 'QTYPE'."""
    cname = c_name(value, False)
    if cname.isupper():
        return cname
    out = ''
    for i, ch in enumerate(cname):
        if ch.isupper() and i > 0 and cname[i - 1] != '_':
            if i < len(cname) - 1 and cname[i + 1].islower():
                out += '_'
            elif cname[i - 1].isdigit():
                out += '_'
        out += ch
    return out.lstrip('_').upper()


def c_enum_const(type_name, value, prefix=None):
    if prefix is not None:
        return prefix + '_' + c_name(value, False).upper()
    return camel_to_upper(type_name) + '_' + c_name(value, False).upper()


def mcgen(text, **kw):
    """Format a code template: drop the leading newline, substitute."""
    if text.startswith('\n'):
        text = text[1:]
    return text % kw if kw else text


class Output:
    """A generated C file pair part: accumulates text."""

    def __init__(self):
        self.parts = []

    def add(self, text):
        self.parts.append(text)

    def text(self):
        return ''.join(self.parts)


def c_string(s):
    """A C string literal for s."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append('\\' + ch)
        elif ch == '\n':
            out.append('\\n')
        elif ord(ch) < 32 or ord(ch) > 126:
            out.append('\\%03o' % ord(ch) if ord(ch) < 256 else ch)
        else:
            out.append(ch)
    return '"' + ''.join(out) + '"'
