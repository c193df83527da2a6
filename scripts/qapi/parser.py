"""
Parser for QEMU's QAPI schema dialect.

A schema file is a sequence of JSON-like expressions with single-quoted
strings, '#' comments, and no numbers or null.  Doc comments are blocks
that start with a line '##' and end with the next line '##'; a doc block
whose first line is '# @name:' documents the next definition, any other
block is free-form text (e.g. '# = Section title').

{'include': 'file.json'} pulls in another file (relative to the including
one, each file at most once); {'pragma': {...}} is accepted and ignored.
"""

import os
import re


class QAPIError(Exception):
    def __init__(self, info, msg):
        super().__init__('%s: %s' % (info, msg) if info else msg)


class SourceInfo:
    def __init__(self, fname, line):
        self.fname = fname
        self.line = line

    def __str__(self):
        return '%s:%d' % (self.fname, self.line)


class QAPIDoc:
    """A parsed doc comment block."""

    def __init__(self, info, symbol):
        self.info = info
        self.symbol = symbol        # None for free-form blocks
        self.body = []              # paragraphs (list of str)
        self.args = {}              # member name -> description
        self.features = {}          # feature name -> description
        self.sections = []          # [(title, text)] Returns/Errors/...
        self.examples = []          # example blocks (str)

    def text(self):
        return '\n\n'.join(self.body)


SECTION_RE = re.compile(
    r'^(Returns|Return|Errors|Since|Note|Notes|Example|Examples|TODO|'
    r'Features)\s*:\s*(.*)$')


def _dedent(lines):
    """Strip the common indentation of non-empty lines."""
    ind = [len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()]
    cut = min(ind) if ind else 0
    return [ln[cut:] for ln in lines]


def parse_doc(info, lines):
    """Parse the comment lines of one '##' block (without '# ')."""
    doc = QAPIDoc(info, None)
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines):
        m = re.match(r'^@([^:\s]+):\s*$', lines[i])
        if m:
            doc.symbol = m.group(1)
            i += 1

    # Split into blocks: a new block starts at '@arg:', 'Section:',
    # '.. qmp-example::' (or 'Example:'), or 'Features:'.
    cur = ('body', None, [])
    blocks = [cur]
    in_features = False
    for ln in lines[i:]:
        stripped = ln.strip()
        m_arg = re.match(r'^@([^:\s]+):\s?(.*)$', ln)
        m_sec = SECTION_RE.match(ln)
        if m_arg:
            kind = 'feature' if in_features else 'arg'
            cur = (kind, m_arg.group(1), [m_arg.group(2)])
            blocks.append(cur)
        elif ln.startswith('.. qmp-example::') or \
                ln.startswith('.. code-block::'):
            cur = ('example', None, [])
            blocks.append(cur)
        elif m_sec:
            title = m_sec.group(1)
            if title == 'Features':
                in_features = True
                cur = ('ignore', None, [])
            elif title in ('Example', 'Examples'):
                in_features = False
                cur = ('example', None, [m_sec.group(2)]
                       if m_sec.group(2) else [])
            else:
                in_features = False
                cur = ('section', 'Notes' if title == 'Note' else
                       'Returns' if title == 'Return' else title,
                       [m_sec.group(2)])
            blocks.append(cur)
        elif cur[0] in ('arg', 'feature') and stripped and \
                not ln.startswith(' '):
            # unindented text after an argument: back to the body
            cur = ('body', None, [ln])
            blocks.append(cur)
            in_features = False
        else:
            cur[2].append(ln)

    for kind, name, blines in blocks:
        if kind == 'example':
            text = '\n'.join(_dedent(blines)).strip('\n')
            if text:
                doc.examples.append(text)
            continue
        if kind == 'ignore':
            continue
        if kind == 'body':
            text = '\n'.join(blines).strip()
            for para in re.split(r'\n\s*\n', text):
                if para.strip():
                    doc.body.append(para.strip())
            continue
        text = ' '.join(s.strip() for s in blines if s.strip())
        if kind == 'arg':
            doc.args[name] = text
        elif kind == 'feature':
            doc.features[name] = text
        else:
            rest = '\n'.join(_dedent(blines[1:])).strip()
            first = blines[0].strip()
            if not first:
                # block section: keep the line structure ("- item")
                doc.sections.append((name, '\n' + rest))
            else:
                doc.sections.append((name, (first + '\n' + rest).strip()
                                     if rest else first))
    return doc


class Lexer:
    def __init__(self, fname, text):
        self.fname = fname
        self.src = text
        self.pos = 0
        self.line = 1
        self.docs = []          # doc blocks seen since the last expr

    def info(self):
        return SourceInfo(self.fname, self.line)

    def error(self, msg):
        raise QAPIError(self.info(), msg)

    def _skip_space(self):
        src = self.src
        while self.pos < len(src):
            c = src[self.pos]
            if c == '\n':
                self.line += 1
                self.pos += 1
                if src.startswith('##', self.pos) and \
                        src[self.pos:self.pos + 3].rstrip() in ('##', ''):
                    self._doc_block()
            elif c in ' \t\r':
                self.pos += 1
            elif c == '#':
                end = src.find('\n', self.pos)
                self.pos = len(src) if end < 0 else end
            else:
                return

    def _doc_block(self):
        """At a line starting '##': read until the closing '##' line."""
        info = self.info()
        end = self.src.find('\n', self.pos)
        if self.src[self.pos:end if end >= 0 else None].strip() != '##':
            return
        lines = []
        self.pos = end + 1
        self.line += 1
        while True:
            if self.pos >= len(self.src):
                raise QAPIError(info, 'unterminated doc comment')
            end = self.src.find('\n', self.pos)
            if end < 0:
                end = len(self.src)
            ln = self.src[self.pos:end]
            if ln.strip() == '##':
                self.pos = end
                break
            if not ln.startswith('#'):
                raise QAPIError(SourceInfo(self.fname, self.line),
                                "doc comment line must start with '#'")
            ln = ln[1:]
            if ln.startswith(' '):
                ln = ln[1:]
            lines.append(ln)
            self.pos = end + 1
            self.line += 1
        self.docs.append(parse_doc(info, lines))

    def start(self):
        # a doc block may start on the very first line
        if self.src.startswith('##'):
            self.src = '\n' + self.src
            self.line = 0

    def token(self):
        """Return the next token: one of '{}[]:,', ('str', s), True,
        False, or None at end of input."""
        self._skip_space()
        if self.pos >= len(self.src):
            return None
        c = self.src[self.pos]
        if c in '{}[]:,':
            self.pos += 1
            return c
        if c == "'":
            self.pos += 1
            out = []
            while True:
                if self.pos >= len(self.src) or self.src[self.pos] == '\n':
                    self.error('missing terminating "\'"')
                ch = self.src[self.pos]
                self.pos += 1
                if ch == "'":
                    return ('str', ''.join(out))
                if ch == '\\':
                    esc = self.src[self.pos:self.pos + 1]
                    self.pos += 1
                    if esc not in ("\\", "/", "'", '"'):
                        self.error("unknown escape \\%s" % esc)
                    ch = esc
                out.append(ch)
        for word, val in (('true', True), ('false', False)):
            if self.src.startswith(word, self.pos):
                self.pos += len(word)
                return val
        self.error("stray '%s'" % c)


class Parser:
    def __init__(self, fname, included=None):
        self.fname = fname
        self.included = included if included is not None else set()
        self.exprs = []         # list of (expr dict, info, doc or None)
        self.free_docs = []     # (index in exprs, QAPIDoc) free-form docs

    def parse(self):
        path = os.path.abspath(self.fname)
        self.included.add(path)
        with open(self.fname, encoding='utf-8') as f:
            lex = Lexer(self.fname, f.read())
        lex.start()
        while True:
            tok = lex.token()
            docs, lex.docs = lex.docs, []
            if tok is None:
                for d in docs:
                    self._add_free_doc(d)
                break
            info = lex.info()
            if tok != '{':
                lex.error('expected \'{\' at top level')
            expr = self._object(lex)
            doc = None
            for d in docs:
                if d.symbol is None:
                    self._add_free_doc(d)
                else:
                    doc = d
            if 'include' in expr:
                self._include(info, expr)
            elif 'pragma' in expr:
                pass
            else:
                self.exprs.append((expr, info, doc))
        return self

    def _add_free_doc(self, doc):
        self.free_docs.append((len(self.exprs), doc))

    def _include(self, info, expr):
        if len(expr) != 1 or not isinstance(expr['include'], str):
            raise QAPIError(info, "invalid 'include' directive")
        incl = os.path.join(os.path.dirname(self.fname), expr['include'])
        if os.path.abspath(incl) in self.included:
            return
        if not os.path.exists(incl):
            raise QAPIError(info, "can't read include file '%s'" % incl)
        sub = Parser(incl, self.included).parse()
        base = len(self.exprs)
        self.exprs.extend(sub.exprs)
        self.free_docs.extend((base + i, d) for i, d in sub.free_docs)

    def _value(self, lex, tok):
        if tok == '{':
            return self._object(lex)
        if tok == '[':
            return self._array(lex)
        if isinstance(tok, tuple):
            return tok[1]
        if tok is True or tok is False:
            return tok
        lex.error('expected value')

    def _object(self, lex):
        out = {}
        tok = lex.token()
        if tok == '}':
            return out
        while True:
            if not isinstance(tok, tuple):
                lex.error('expected string as object key')
            key = tok[1]
            if key in out:
                lex.error("duplicate key '%s'" % key)
            if lex.token() != ':':
                lex.error("expected ':'")
            out[key] = self._value(lex, lex.token())
            tok = lex.token()
            if tok == '}':
                return out
            if tok != ',':
                lex.error("expected ',' or '}'")
            tok = lex.token()

    def _array(self, lex):
        out = []
        tok = lex.token()
        if tok == ']':
            return out
        while True:
            out.append(self._value(lex, tok))
            tok = lex.token()
            if tok == ']':
                return out
            if tok != ',':
                lex.error("expected ',' or ']'")
            tok = lex.token()
