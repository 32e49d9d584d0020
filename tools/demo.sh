#!/usr/bin/env bash
# The main job (README): bash tools/demo.sh [ansible-playbook options]
# Installs what it needs (tools/bootstrap.sh), lays the collection out under
# $QI_BUILD_DIR/demo and runs the playbook qemu_init.qemu.demo (playbooks/demo.yml).
set -euo pipefail

# shellcheck source=tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$QI_REPO/tools/bootstrap.sh"
demo_root="$QI_BUILD_DIR/demo"
qi_layout "$demo_root/ansible_collections/qemu_init/qemu"
export PATH="$QI_VENV/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$demo_root" ANSIBLE_HOME="$demo_root/ansible-home"
cd "$demo_root"
exec ansible-playbook -i localhost, qemu_init.qemu.demo "$@"
