"""Pre-warmed kernels for tljh_daemon's single-user servers.

A server extension (loaded by every server of the environment, through the config file this
package installs) that, when the hub asks for it (`TLJH_KERNEL_PREWARM=1` in the server's
environment: the `kernels.prewarm` setting), makes `tljh-prewarm` the default kernel provisioner
and starts the server's kernel zygote when a client first lists kernelspecs (state.py). Nothing
else is imported until then.
"""

ENV_SWITCH = "TLJH_KERNEL_PREWARM"


def _jupyter_server_extension_points():
    return [{"module": "tljh_kernel_prewarm"}]


def _load_jupyter_server_extension(serverapp):
    import os

    # Taken out of the server's environment, so kernels and terminals never see it.
    if os.environ.pop(ENV_SWITCH, "") != "1":
        return
    from jupyter_client.provisioning import KernelProvisionerFactory

    from . import state

    factory = KernelProvisionerFactory.instance(parent=serverapp)
    if factory.default_provisioner_name != "local-provisioner":
        serverapp.log.info("Kernel pre-warm: off, kernels use the configured provisioner %s",
                           factory.default_provisioner_name)
        return
    state.enable(serverapp.log)
    factory.default_provisioner_name = "tljh-prewarm"
    specs = serverapp.kernel_spec_manager
    list_specs = specs.get_all_specs

    def get_all_specs():
        try:
            state.warm()
        except OSError as e:
            serverapp.log.warning("Kernel pre-warm: the kernel zygote did not start: %s", e)
        return list_specs()

    specs.get_all_specs = get_all_specs
