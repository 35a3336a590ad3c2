"""Pre-warmed kernels for tljh_daemon's single-user servers.

A server extension (loaded by every server of the environment, through the config file this
package installs) that, when the hub asks for it (`TLJH_KERNEL_PREWARM=1` in the server's
environment: the `kernels.prewarm` setting), makes `tljh-prewarm` the default kernel provisioner
and starts the server's kernel zygote when a person first opens a page or a client lists
kernelspecs. Nothing else is imported until then.
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
    _start_zygote_on_first_use(serverapp, state)


# Pages a person opens before starting a kernel: the zygote (0.2 CPU-seconds of imports) starts
# while their browser loads JupyterLab's scripts, and is ready before they can start a kernel.
PAGES = ("lab", "tree", "notebooks", "doc", "edit", "voila", "retro")


def _start_zygote_on_first_use(serverapp, state):
    """Start the zygote at the first page load or kernelspec listing, not with the server: a class
    start's servers do not all import the kernel machinery at once, and one nobody opens never does."""

    def warm():
        try:
            state.warm()
        except OSError as e:
            serverapp.log.warning("Kernel pre-warm: the kernel zygote did not start: %s", e)

    specs = serverapp.kernel_spec_manager
    list_specs = specs.get_all_specs

    def get_all_specs():
        warm()
        return list_specs()

    specs.get_all_specs = get_all_specs
    # tornado calls log_function once per finished request: the one hook every request passes.
    settings = serverapp.web_app.settings
    log_request = settings.get("log_function")
    if log_request is None:
        return
    base = serverapp.base_url

    def log_function(handler):
        if state.zygote is None and handler.request.method == "GET" and handler.get_status() == 200:
            path = handler.request.path
            if path.startswith(base) and path[len(base):].startswith(PAGES):
                warm()
        log_request(handler)

    settings["log_function"] = log_function
