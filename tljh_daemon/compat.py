"""Which JupyterHub version to report, so jupyterhub-singleuser sees a matching hub.

The single-user server compares our `X-JupyterHub-Version` with its own and
warns on a mismatch, so we report the version installed in the user environment.
"""

import glob
import os
import re

FALLBACK_VERSION = "6.1.1"


def installed_jupyterhub_version(user_env):
    pattern = os.path.join(user_env, "lib", "python3*", "site-packages", "jupyterhub-*.dist-info")
    for path in sorted(glob.glob(pattern)):
        match = re.match(r"jupyterhub-([^-]+)\.dist-info$", os.path.basename(path))
        if match:
            return match.group(1)
    return FALLBACK_VERSION
