# Copyright (c) qemu_init.qemu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The options of one VM, as vm_config takes them at its top level and in each item of `vms`, and as the vms
module takes them in each item: one definition for both modules (their DOCUMENTATION describes them)."""

from __future__ import annotations

from ansible_collections.qemu_init.qemu.plugins.module_utils._devices import disk, firmware
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic import BACKENDS
from ansible_collections.qemu_init.qemu.plugins.module_utils._devices.nic_base import DEFAULT_NIC_BACKEND, DEFAULT_NIC_MODEL


def per_vm_argument_spec():
    """The options of one VM: the module's top level, and each item of O(vms)."""
    return dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        short_name=dict(type="str"),
        os=dict(type="str", default="linux"),
        memory=dict(type="int"),
        cpus=dict(type="int"),
        machine=dict(type="str"),
        accel=dict(type="str", default="auto", choices=["auto", "kvm", "tcg"]),
        disks=dict(type="list", elements="dict", default=[], options=dict(
            file=dict(type="path", required=True),
            format=dict(type="str", choices=list(disk.FORMATS)),
            interface=dict(type="str", default=disk.DEFAULT_INTERFACE, choices=list(disk.INTERFACES)),
            readonly=dict(type="bool", default=False),
            base_image=dict(type="path"),
            size=dict(type="str"),
            cache=dict(type="str", choices=list(disk.CACHES)),
            discard=dict(type="str", choices=list(disk.DISCARDS)),
        )),
        cdroms=dict(type="list", elements="path", default=[]),
        kernel=dict(type="path"),
        initrd=dict(type="path"),
        append=dict(type="str"),
        nics=dict(type="list", elements="dict", default=[], options=dict(
            model=dict(type="str", default=DEFAULT_NIC_MODEL),
            backend=dict(type="str", default=DEFAULT_NIC_BACKEND, choices=list(BACKENDS)),
            bridge=dict(type="str"),
            tap=dict(type="str"),
            listen=dict(type="str"),
            connect=dict(type="str"),
            mcast=dict(type="str"),
            localaddr=dict(type="str"),
            hub=dict(type="int"),
            hostfwd=dict(type="list", elements="str"),
            restrict=dict(type="bool"),
            mac=dict(type="str"),
        )),
        hubs=dict(type="list", elements="dict", default=[], options=dict(
            id=dict(type="int", required=True),
            bridge=dict(type="str"),
            tap=dict(type="str"),
        )),
        bridge=dict(type="str", default="br0"),
        netns=dict(type="str"),
        vnc=dict(type="bool", default=False),
        vnc_listen=dict(type="str", default="127.0.0.1"),
        vnc_password=dict(type="str", no_log=True),  # to the state dir, never argv, cfg or results
        monitor_tcp=dict(type="bool", default=False),
        autostart=dict(type="bool", default=False),
        serial_log=dict(type="path"),
        extra_args=dict(type="list", elements="str", default=[]),
        firmware=dict(type="str", default=firmware.DEFAULT, choices=list(firmware.FIRMWARES)),
        secure_boot=dict(type="bool", default=False),
        tpm=dict(type="bool", default=False),
        guest_agent=dict(type="bool", default=False),
        cloud_init=dict(type="dict", options=dict(
            # Passwords, keys and tokens live in user_data and vendor_data: secret_aware_module keeps them out of the
            # invocation Ansible logs and returns (no_log here would mask every word of them in every result).
            user_data=dict(type="raw"),
            meta_data=dict(type="raw"),
            network_config=dict(type="raw"),
            vendor_data=dict(type="raw"),
        )),
    )


# The per-VM options whose values are secrets (passwords, keys and tokens in cloud-init data, the VNC password);
# (outer, None) is a top-level option.
SECRET_OPTIONS = (("cloud_init", "user_data"), ("cloud_init", "vendor_data"), ("vnc_password", None))
REDACTED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"  # what Ansible shows for a no_log option


def _redact_vm(options):
    if not isinstance(options, dict):
        return options
    options = dict(options)
    for outer, inner in SECRET_OPTIONS:
        section = options.get(outer)
        if inner is None:
            if section is not None:
                options[outer] = REDACTED
        elif isinstance(section, dict) and section.get(inner) is not None:
            options[outer] = dict(options[outer], **{inner: REDACTED})
    return options


def redacted(params):
    """The module's parameters with every secret option (top level, and in each `vms` item) replaced by REDACTED."""
    params = _redact_vm(params)
    if isinstance(params.get("vms"), list):
        params["vms"] = [_redact_vm(item) for item in params["vms"]]
    return params


def odd_dict_option(argument_spec, params):
    """(option, problem) for the first option of type dict with suboptions whose value is neither null, a dict nor a
    string that reads as one (JSON or key=value); else None.

    ansible-core 2.19 has no clean error for these: an int or a list of ints there raises TypeError inside its own
    validation (a traceback before the module runs), and a string that is not a dict fails with "dictionary
    requested, could not parse JSON or key=value", which names no option. Checked before ansible-core's validation.
    """
    from ansible.module_utils.common.validation import check_type_dict

    for option, spec in argument_spec.items():
        if spec.get("type") != "dict" or not spec.get("options") or not isinstance(params, dict):
            continue
        value = params.get(option)
        if value is None or isinstance(value, dict):
            continue
        if isinstance(value, str):
            try:
                check_type_dict(value)
                continue
            except (TypeError, ValueError):
                what = "a string that is neither JSON nor key=value pairs"
        else:
            what = type(value).__name__
        return option, "must be a dict with the keys %s, not %s" % (", ".join(spec["options"]), what)
    return None


def secret_aware_module(argument_spec, **kwargs):
    """An AnsibleModule that keeps the cloud-init data out of what it logs and returns.

    Marking the options no_log would make Ansible mask every leaf value of the data, as a substring of every
    string of every result: a user named `debian` in user_data masks a VM named `debian`, and every path with
    `debian` in it. So the options are not no_log; instead exactly these values are replaced, in the invocation
    logged to the host's journal and in the one returned with the result (the only places Ansible puts the
    parameters; the collection's own results and diffs never contain the data, only its digests).
    """
    from ansible.module_utils.basic import AnsibleModule

    class _Module(AnsibleModule):
        refused = None

        def _load_params(self):
            super()._load_params()
            # Taken out before ansible-core validates (see odd_dict_option) and refused once it has.
            self.refused = odd_dict_option(argument_spec, self.params)
            if self.refused is not None:
                del self.params[self.refused[0]]

        def _log_invocation(self):
            params = self.params
            self.params = redacted(params)
            try:
                super()._log_invocation()
            finally:
                self.params = params

        def _return_formatted(self, kwargs):
            kwargs.setdefault("invocation", {"module_args": redacted(self.params)})
            super()._return_formatted(kwargs)

    module = _Module(argument_spec=argument_spec, **kwargs)
    if module.refused is not None:
        module.fail_json(msg="%s: %s" % module.refused)
    return module
