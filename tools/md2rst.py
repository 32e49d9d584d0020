# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn the Markdown guides in docs/ into the collection's extra docs (docs/docsite/rst/*.rst).

The guides are written and read as Markdown (docs/NAME.md, linked from README.md). The
antsibull-docs docsite takes reStructuredText only, so every guide listed in
docs/docsite/extra-docs.yml (toctree entry NAME -> docs/NAME.md) is rendered to
docs/docsite/rst/NAME.rst. The .rst files are committed, so the collection artifact carries them.

    python tools/md2rst.py [--repo DIR]           write the .rst files (and drop stale generated ones)
    python tools/md2rst.py --check [--repo DIR]   exit 1 if any .rst file differs from what would be written
    python tools/md2rst.py --compare-html HTML     exit 1 if a guide's page in the built docsite does not show
                                                  the same text as the Markdown (tools/build-docs.sh runs it)

Needs markdown-it-py (in the venv: ansible-lint depends on it through rich). Handles the Markdown the
guides use: ATX headings, paragraphs, bullet and ordered lists (nested), fenced code, GFM tables,
block quotes, inline code, emphasis, links. Links to other listed guides (and their #anchors) become
:ref: links; links to other files of the repository become links to the repository's web view;
a code span holding exactly a plugin's or role's FQCN becomes an :ansplugin: link. Sphinx with -W
(tools/build-docs.sh) and `antsibull-docs lint-collection-docs` check the result.
"""

from __future__ import annotations

import argparse
import difflib
import html
import os
import posixpath
import re
import sys
import unicodedata

import yaml
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

COLLECTION = "qemu_init.qemu"
LABEL_PREFIX = "ansible_collections.%s.docsite." % COLLECTION
GENERATED = ".. Generated from docs/%s.md by tools/md2rst.py. Do not edit: edit the Markdown, then run\n" \
            ".. bash tools/build-docs.sh (or .venv/bin/python tools/md2rst.py)."
GENERATED_MARK = ".. Generated from docs/"

# Characters that may stand right before an inline markup start-string / right after an end-string
# without escaped whitespace (docutils' inline markup recognition rules, simplified).
OPENERS = set(" \t\n'\"([{<-/:")
CLOSERS = set(" \t\n'\")]}>-/:.,;!?\\")
HEADING_CHARS = "=-~^\"'"


def github_slug(text):
    """The anchor GitHub gives a heading."""
    text = text.strip().lower()
    out = []
    for ch in text:
        if ch in " -":
            out.append("-")
        elif ch == "_" or unicodedata.category(ch)[0] in ("L", "N"):
            out.append(ch)
    return "".join(out)


def doc_label(doc):
    return LABEL_PREFIX + doc.replace("-", "_")


def anchor_label(doc, slug):
    return "%s.%s" % (doc_label(doc), slug.replace("-", "_"))


def escape_text(text):
    text = text.replace("\\", "\\\\")
    for ch in "*`|":
        text = text.replace(ch, "\\" + ch)
    # A trailing underscore makes a reference (name_), a leading one a target (_`x`).
    text = re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", text)
    return text.replace("::", ":\\:")


def guard_start(text):
    """Text that starts a paragraph or a table cell must not read as a list item, comment or directive."""
    text = re.sub(r"^([-*+]|\d+[.)]|#\.)(\s|$)", lambda m: "\\" + m.group(1) + m.group(2), text)
    return re.sub(r"^\.\.", r"\\..", text)


def escape_role_text(text):
    """Text inside an interpreted-text role (:ref:`text <target>`)."""
    return text.replace("\\", "\\\\").replace("`", "\\`").replace("<", "\\<").replace(">", "\\>")


def plain(node):
    """The text of an inline node tree, without markup."""
    if node.type in ("text", "code_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(plain(c) for c in node.children)


class Site:
    """What the converter knows about the repository: guides, their headings, plugins."""

    def __init__(self, repo):
        self.repo = repo
        with open(os.path.join(repo, "galaxy.yml"), encoding="utf-8") as f:
            galaxy = yaml.safe_load(f)
        self.web = galaxy["repository"].rstrip("/")
        with open(os.path.join(repo, "docs", "docsite", "extra-docs.yml"), encoding="utf-8") as f:
            index = yaml.safe_load(f) or {}
        self.guides = []
        for section in index.get("sections") or []:
            for entry in section.get("toctree") or []:
                ref = entry["ref"] if isinstance(entry, dict) else entry
                self.guides.append(ref)
        self.md = MarkdownIt("commonmark").enable("table")
        self.trees = {}
        self.slugs = {}  # guide -> {slug: heading text}
        missing = [g for g in self.guides if not os.path.isfile(self.source(g))]
        if missing:
            raise SystemExit("md2rst: docs/docsite/extra-docs.yml lists guides that do not exist: %s"
                             % ", ".join("docs/%s.md" % g for g in missing))
        for guide in self.guides:
            with open(self.source(guide), encoding="utf-8") as f:
                tree = SyntaxTreeNode(self.md.parse(f.read()))
            self.trees[guide] = tree
            slugs = {}
            for node in tree.walk():
                if node.type == "heading":
                    text = plain(node.children[0])
                    slug = base = github_slug(text)
                    n = 1
                    while slug in slugs:
                        slug = "%s-%d" % (base, n)
                        n += 1
                    slugs[slug] = text
            self.slugs[guide] = slugs
        self.plugins = self._plugins()
        self.wanted_anchors = set()  # (guide, slug) that some link points at

    def source(self, guide):
        return os.path.join(self.repo, "docs", guide + ".md")

    def target(self, guide):
        return os.path.join(self.repo, "docs", "docsite", "rst", guide + ".rst")

    def _plugins(self):
        found = {}
        for ptype, sub, exts in (("module", "plugins/modules", (".py",)), ("filter", "plugins/filter", (".yml", ".yaml")),
                                 ("lookup", "plugins/lookup", (".py",)), ("inventory", "plugins/inventory", (".py",))):
            path = os.path.join(self.repo, sub)
            if os.path.isdir(path):
                for fn in os.listdir(path):
                    stem, ext = os.path.splitext(fn)
                    if ext in exts and not stem.startswith("_"):
                        found["%s.%s" % (COLLECTION, stem)] = ptype
        roles = os.path.join(self.repo, "roles")
        if os.path.isdir(roles):
            for name in os.listdir(roles):
                if os.path.isdir(os.path.join(roles, name, "tasks")):
                    found["%s.%s" % (COLLECTION, name)] = "role"
        return found

    def resolve(self, guide, href):
        """A Markdown link target -> ('ref', label) or ('url', url)."""
        if re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I):
            return "url", href
        path, dummy, anchor = href.partition("#")
        if not path:
            target = guide
        else:
            rel = posixpath.normpath(posixpath.join("docs", path))
            stem = rel[len("docs/"):-len(".md")] if rel.startswith("docs/") and rel.endswith(".md") else None
            if stem not in self.guides:
                kind = "tree" if os.path.isdir(os.path.join(self.repo, rel)) else "blob"
                if rel.startswith("../") or not os.path.exists(os.path.join(self.repo, rel)):
                    raise ValueError("docs/%s.md: link %r points at nothing in the repository" % (guide, href))
                return "url", "%s/%s/main/%s%s" % (self.web, kind, rel, "#" + anchor if anchor else "")
            target = stem
        if not anchor:
            return "ref", doc_label(target)
        if anchor not in self.slugs[target]:
            raise ValueError("docs/%s.md: link %r: docs/%s.md has no heading with that anchor" % (guide, href, target))
        self.wanted_anchors.add((target, anchor))
        return "ref", anchor_label(target, anchor)


class Renderer:
    def __init__(self, site, guide):
        self.site = site
        self.guide = guide
        levels = sorted({int(n.tag[1]) for n in site.trees[guide].walk() if n.type == "heading"})
        self.heading_char = dict((lvl, HEADING_CHARS[i]) for i, lvl in enumerate(levels))
        self.seen_slugs = {}

    # --- inline ----------------------------------------------------------------------
    def inline(self, node):
        """Render inline children to text; markup pieces get escaped whitespace where needed."""
        pieces = []  # (is_markup, text)
        self._inline_pieces(node, pieces)
        out = ""
        for i, (markup, text) in enumerate(pieces):
            if markup:
                if out and out[-1] not in OPENERS:
                    out += "\\ "
                out += text
                nxt = pieces[i + 1][1] if i + 1 < len(pieces) else ""
                if nxt and nxt[0] not in CLOSERS:
                    out += "\\ "
            else:
                out += text
        return out

    def _inline_pieces(self, node, pieces):
        for child in node.children:
            t = child.type
            if t == "text":
                pieces.append((False, escape_text(child.content)))
            elif t == "softbreak" or t == "hardbreak":
                pieces.append((False, "\n"))
            elif t == "code_inline":
                pieces.append((True, self.code(child.content)))
            elif t in ("em", "strong"):
                mark = "*" if t == "em" else "**"
                inner = []
                self._inline_pieces(child, inner)
                if any(is_markup for is_markup, dummy in inner):
                    # reST cannot nest markup: keep the inner markup, drop the emphasis.
                    pieces.extend(inner)
                else:
                    pieces.append((True, mark + "".join(text for dummy, text in inner).strip() + mark))
            elif t == "link":
                pieces.append((True, self.link(child)))
            elif t == "html_inline":
                pieces.append((False, escape_text(child.content)))
            elif t == "image":
                raise ValueError("docs/%s.md: images are not supported" % self.guide)
            else:
                raise ValueError("docs/%s.md: unsupported inline element %s" % (self.guide, t))

    def code(self, content):
        if content in self.site.plugins:
            return ":ansplugin:`%s#%s`" % (content, self.site.plugins[content])
        if "`" in content or content != content.strip():
            return ":literal:`%s`" % content.replace("\\", "\\\\").replace("`", "\\`")
        return "``%s``" % content

    def link(self, node):
        kind, target = self.site.resolve(self.guide, node.attrs["href"])
        text = plain(node).strip()
        if kind == "ref":
            return ":ref:`%s <%s>`" % (escape_role_text(text), target) if text else ":ref:`%s`" % target
        if not text or text == target:
            return "`<%s>`__" % target
        return "`%s <%s>`__" % (escape_role_text(text), target)

    # --- blocks ----------------------------------------------------------------------
    def blocks(self, nodes):
        """Render block nodes to a list of lines, blocks separated by one empty line."""
        lines = []
        prev = None
        for node in nodes:
            block = self.block(node, prev)
            if not block:
                continue
            if lines:
                lines.append("")
            lines.extend(block)
            prev = node
        return lines

    def block(self, node, prev):
        t = node.type
        if t == "heading":
            return self.heading(node)
        if t == "paragraph":
            return guard_start(self.inline(node.children[0])).split("\n")
        if t in ("fence", "code_block"):
            return self.code_block(node)
        if t == "bullet_list":
            return self.list_items(node, lambda i: "-")
        if t == "ordered_list":
            start = int(node.attrs.get("start", 1))
            return self.list_items(node, lambda i: "%d." % (start + i))
        if t == "blockquote":
            inner = self.blocks(node.children)
            # An empty comment ends whatever came before, so the indented quote stands alone.
            return ["..", ""] + ["    " + ln if ln else "" for ln in inner]
        if t == "table":
            return self.table(node)
        if t == "hr":
            return ["----"]
        if t == "html_block":
            return [".. raw:: html", ""] + ["   " + ln if ln else "" for ln in node.content.rstrip("\n").split("\n")]
        raise ValueError("docs/%s.md: unsupported block element %s" % (self.guide, t))

    def heading(self, node):
        text = self.inline(node.children[0]).replace("\n", " ")
        title = plain(node.children[0])
        slug = base = github_slug(title)
        n = 1
        while slug in self.seen_slugs:
            slug = "%s-%d" % (base, n)
            n += 1
        self.seen_slugs[slug] = True
        level = int(node.tag[1])
        char = self.heading_char[level]
        rule = char * max(len(text), 3)
        lines = []
        if (self.guide, slug) in self.site.wanted_anchors:
            lines += [".. _%s:" % anchor_label(self.guide, slug), ""]
        if char == "=":
            lines += [rule, text, rule]
        else:
            lines += [text, rule]
        return lines

    def code_block(self, node):
        lang = (node.info or "").strip().split(" ")[0].lower() if node.type == "fence" else ""
        lang = {"yml": "yaml", "shell": "bash", "sh": "bash", "": "text", "txt": "text", "console": "console"}.get(lang, lang)
        try:
            from pygments.lexers import get_lexer_by_name
            get_lexer_by_name(lang)
        except Exception:  # an unknown language: show it plain rather than fail the build
            lang = "text"
        content = node.content.rstrip("\n")
        if not content.strip():
            return []
        return [".. code-block:: %s" % lang, ""] + ["  " + ln if ln.strip() else "" for ln in content.split("\n")]

    def list_items(self, node, marker):
        lines = []
        for i, item in enumerate(node.children):
            m = marker(i)
            pad = " " * (len(m) + 1)
            body = self.blocks(item.children) or [""]
            if lines:
                lines.append("")
            lines.append(("%s %s" % (m, body[0])).rstrip())
            lines.extend(pad + ln if ln else "" for ln in body[1:])
        return lines

    def table(self, node):
        rows = []
        header_rows = 0
        for section in node.children:
            for tr in section.children:
                rows.append([guard_start(self.inline(cell.children[0]).replace("\n", " ")) if cell.children else ""
                             for cell in tr.children])
                if section.type == "thead":
                    header_rows += 1
        lines = [".. list-table::", "   :header-rows: %d" % header_rows, "   :widths: auto", ""]
        for row in rows:
            for j, cell in enumerate(row):
                lead = "   * - " if j == 0 else "     - "
                lines.append((lead + cell).rstrip())
        return lines

    def render(self):
        tree = self.site.trees[self.guide]
        lines = [GENERATED % self.guide, "", ".. _%s:" % doc_label(self.guide), ""]
        lines.extend(self.blocks(tree.children))
        return "\n".join(lines) + "\n"


def _visible_text(markup):
    """The text a reader sees in an HTML fragment, without whitespace, quotes and dashes normalised."""
    text = html.unescape(re.sub(r"<[^>]+>", "", markup))
    for fancy, simple in (("\u201c", '"'), ("\u201d", '"'), ("\u2018", "'"), ("\u2019", "'"),
                          ("\u2013", "--"), ("\u2014", "---"), ("\u2026", "...")):
        text = text.replace(fancy, simple)  # Sphinx's smartquotes
    return re.sub(r"\s+", "", text)


def compare_html(site, html_dir):
    """Check that each guide's page in the built docsite shows the same text as its Markdown."""
    problems = []
    for guide in site.guides:
        with open(site.source(guide), encoding="utf-8") as f:
            want = _visible_text(site.md.render(f.read()))
        page = os.path.join(html_dir, "docsite", guide + ".html")
        try:
            with open(page, encoding="utf-8") as f:
                built = f.read()
        except FileNotFoundError:
            problems.append("%s: no such page" % page)
            continue
        body = re.search(r'itemprop="articleBody">(.*?)<footer', built, re.S)
        if body is None:
            problems.append("%s: no article body found" % page)
            continue
        got = _visible_text(re.sub(r'<a class="headerlink".*?</a>', "", body.group(1)))
        if got != want:
            matcher = difflib.SequenceMatcher(None, want, got, autojunk=False)
            for op, i1, i2, j1, j2 in matcher.get_opcodes():
                if op != "equal":
                    problems.append("docs/%s.md: %s %r -> %r" % (guide, op, want[max(0, i1 - 40):i2 + 10],
                                                                 got[max(0, j1 - 40):j2 + 10]))
    return problems


def render_all(site):
    # First pass collects the anchors links point at; the second emits labels for them.
    for guide in site.guides:
        Renderer(site, guide).render()
    return dict((guide, Renderer(site, guide).render()) for guide in site.guides)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--check", action="store_true", help="only report .rst files that are out of date")
    parser.add_argument("--compare-html", metavar="HTML_DIR",
                        help="only check that the built docsite shows each guide's text as its Markdown does")
    args = parser.parse_args(argv)
    try:
        site = Site(args.repo)
        out = render_all(site)
    except ValueError as exc:
        print("md2rst: %s" % exc, file=sys.stderr)
        return 1
    if args.compare_html:
        problems = compare_html(site, args.compare_html)
        for problem in problems:
            print("md2rst: text differs: %s" % problem, file=sys.stderr)
        if problems:
            return 1
        print("md2rst: the HTML of all %d guides shows the text of their Markdown" % len(site.guides))
        return 0
    unlisted = sorted(fn for fn in os.listdir(os.path.join(args.repo, "docs"))
                      if fn.endswith(".md") and fn[:-3] not in out)
    if unlisted:
        print("md2rst: note: not in the docsite (add to docs/docsite/extra-docs.yml to include): %s"
              % ", ".join("docs/" + fn for fn in unlisted), file=sys.stderr)
    rst_dir = os.path.join(args.repo, "docs", "docsite", "rst")
    stale = []
    if os.path.isdir(rst_dir):
        for fn in sorted(os.listdir(rst_dir)):
            path = os.path.join(rst_dir, fn)
            if fn.endswith(".rst") and fn[:-4] not in out:
                with open(path, encoding="utf-8") as f:
                    if f.read(len(GENERATED_MARK)) == GENERATED_MARK:
                        stale.append(path)
    differ = []
    for guide, text in out.items():
        path = site.target(guide)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            differ.append(path)
            if not args.check:
                os.makedirs(rst_dir, exist_ok=True)
                with open(path + ".tmp", "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(path + ".tmp", path)
    if not args.check:
        for path in stale:
            os.unlink(path)

    def rel(path):
        return os.path.relpath(path, args.repo)

    if args.check:
        if differ or stale:
            print("md2rst: out of date (edit docs/*.md, then run bash tools/build-docs.sh or "
                  ".venv/bin/python tools/md2rst.py): %s" % ", ".join(rel(p) for p in differ + stale), file=sys.stderr)
            return 1
        print("md2rst: %d guides, docs/docsite/rst is up to date" % len(out))
        return 0
    print("md2rst: %d guides; written: %s; removed: %s" % (
        len(out), ", ".join(rel(p) for p in differ) or "none", ", ".join(rel(p) for p in stale) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
