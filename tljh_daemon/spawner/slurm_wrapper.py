"""Runs inside the Slurm job (with the user environment's Python, standard library only):
pick a free port on this node, tell the hub (POST <api>/batchspawner {"port": N} with the
server's own token, the protocol of JupyterHub's batchspawner), then become
jupyterhub-singleuser listening there.

The hub learns the node from Slurm itself, so a job can only ever say which port it is on.
"""

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request


def free_port(address):
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def report(api_url, token, port, attempts=5):
    request = urllib.request.Request(
        api_url.rstrip("/") + "/batchspawner",
        data=json.dumps({"port": port}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=30):
                return
        except urllib.error.HTTPError as e:  # the hub answered: retrying will not help
            sys.exit(f"the hub refused the port report: {e.code} {e.read().decode(errors='replace')}")
        except OSError as e:
            if attempt == attempts - 1:
                sys.exit(f"could not reach the hub at {api_url}: {e}")
            time.sleep(2**attempt)


def main():
    address = os.environ.pop("TLJH_SLURM_BIND_ADDRESS", "0.0.0.0")
    singleuser = sys.argv[1]
    port = free_port(address)
    host = f"[{address}]" if ":" in address else address
    os.environ["JUPYTERHUB_SERVICE_URL"] = f"http://{host}:{port}{os.environ['JUPYTERHUB_SERVICE_PREFIX']}"
    report(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"], port)
    print(f"Reported port {port} on {socket.gethostname()} to the hub; starting {singleuser}", flush=True)
    os.execv(singleuser, [singleuser, *sys.argv[2:]])


if __name__ == "__main__":
    main()
