#!/usr/bin/env bash
# Build the collection's HTML docs, offline:   bash tools/build-docs.sh [OUTDIR]
# (default OUTDIR: .build/docs; open OUTDIR/index.html). The site has a page per module, filter and
# role, and the guides listed in docs/docsite/extra-docs.yml.
#
#   1. docs/docsite/rst/*.rst are regenerated from the Markdown guides (tools/md2rst.py).
#   2. The collection is put on a collections path (the tree this script is in; a symlink when it
#      does not already sit at .../ansible_collections/qemu_init/qemu).
#   3. `antsibull-docs sphinx-init --use-current` writes a Sphinx project, and its build.sh runs
#      `antsibull-docs collection` (plugin and role pages, --fail-on-error) and
#      `sphinx-build -W --keep-going` (every warning fails the build).
#   4. Each guide's page must show the same text as its Markdown (md2rst.py --compare-html).
# Offline: Sphinx's intersphinx would download docs.ansible.com's inventory for the links the
# generated pages make to Ansible's own docs (common return values, configuration settings, action plugins). It
# reads a small local inventory instead (ANSIBLE_REFS below), so those links still go to
# docs.ansible.com; a new reference to Ansible's docs fails the build until it is added there.
#
# Environment: QI_VENV; QI_DOCS_SKIP_BOOTSTRAP=1 when the venv is known to be ready (tools/test.sh);
# QI_DOCS_NO_REGEN=1 to build the committed .rst as they are.
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUTDIR="${1:-$QI_REPO/.build/docs}"

# Labels of docs.ansible.com's docsite that generated pages refer to: label, page#anchor, title.
ANSIBLE_DOCS_URL="https://docs.ansible.com/projects/ansible/devel/"
ANSIBLE_REFS="
common_return_values	reference_appendices/common_return_values.html#common-return-values	Return Values
ansible_configuration_settings	reference_appendices/config.html#ansible-configuration-settings	Ansible Configuration Settings
action_plugins	plugins/action.html#action-plugins	Action Plugins
"

if [[ "${QI_DOCS_SKIP_BOOTSTRAP:-}" != 1 ]]; then
    bash "$QI_REPO/tools/bootstrap.sh"
fi
export PATH="$QI_VENV/bin:$PATH"
start="$(qi_now)"

if [[ "${QI_DOCS_NO_REGEN:-}" != 1 ]]; then
    python "$QI_REPO/tools/md2rst.py" --repo "$QI_REPO"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/qi-docs.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT

# The collections path: the tree itself when it is laid out already (tools/test.sh), else a symlink.
case "$QI_REPO" in
    */ansible_collections/qemu_init/qemu) colls="${QI_REPO%/ansible_collections/qemu_init/qemu}" ;;
    *)
        colls="$work/collections"
        mkdir -p "$colls/ansible_collections/qemu_init"
        ln -s "$QI_REPO" "$colls/ansible_collections/qemu_init/qemu"
        ;;
esac
export ANSIBLE_COLLECTIONS_PATH="$colls"
# Only this collection: ansible-core's own collections are not documented here.
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false

site="$work/site"
mkdir -p "$site"
antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error \
    --no-add-antsibull-docs-version \
    --project qemu_init.qemu --copyright 'qemu_init.qemu contributors' \
    --title 'qemu_init.qemu' --html-short-title 'qemu_init.qemu' \
    --dest-dir "$site" qemu_init.qemu >/dev/null

# Offline intersphinx: the local inventory, never a download.
python - "$site/ansible_devel.inv" "$ANSIBLE_REFS" <<'EOF'
import sys, zlib
path, refs = sys.argv[1], sys.argv[2]
lines = []
for row in refs.strip().splitlines():
    label, uri, title = row.split("\t")
    lines.append("%s std:label -1 %s %s\n" % (label, uri, title))
with open(path, "wb") as f:
    f.write(b"# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
            b"# The remainder of this file is compressed using zlib.\n")
    f.write(zlib.compress("".join(lines).encode()))
EOF
repo_url="$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["repository"].rstrip("/"))' \
    "$QI_REPO/galaxy.yml")"
cat >>"$site/conf.py" <<EOF

# --- tools/build-docs.sh ---
# No downloads: the local inventory.
intersphinx_mapping = {
    'ansible_devel': ('$ANSIBLE_DOCS_URL', '$site/ansible_devel.inv'),
}
# The theme's top bar links to ansible.com's blog and forum by default; link this project instead.
html_theme_options = {
    'topbar_links': {
        'Repository': '$repo_url',
        'Issues': '$repo_url/issues',
        'Ansible documentation': 'https://docs.ansible.com/',
    },
}
EOF

bash "$site/build.sh" >"$work/build.log" 2>&1 || {
    grep -E 'WARNING|ERROR|Error|error' "$work/build.log" >&2 || tail -n 40 "$work/build.log" >&2
    qi_die "docs build failed (warnings are errors; log above)"
}
html="$site/build/html"
[[ -f "$html/index.html" ]] || qi_die "docs build wrote no index.html"
# The converter's own check: every guide's page shows the text its Markdown shows.
python "$QI_REPO/tools/md2rst.py" --repo "$QI_REPO" --compare-html "$html"

rm -rf -- "$OUTDIR"
mkdir -p "$(dirname "$OUTDIR")"
cp -a "$html" "$OUTDIR"
qi_log "docs: $(find "$OUTDIR" -name '*.html' | wc -l) HTML pages in $OUTDIR (open $OUTDIR/index.html), $(qi_elapsed "$start")s"
