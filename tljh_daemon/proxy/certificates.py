"""What certificate HTTPS is serving, for the admin panel: issuer, expiry, last ACME error."""

import base64
import json
import os
import re

ACME_ERROR = re.compile(r"Unable to obtain ACME certificate.*|acme: error.*")


def _describe(pem):
    from cryptography import x509  # ~7 MiB the hub holds only where HTTPS is on and an admin looks

    cert = x509.load_pem_x509_certificates(pem)[0]
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _acme_certificate(store):
    try:
        with open(store) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    for resolver in data.values():
        for entry in (resolver or {}).get("Certificates") or []:
            return _describe(base64.b64decode(entry["certificate"]))
    return None


def _last_acme_error(log_path):
    try:
        with open(log_path, errors="replace") as f:
            f.seek(max(0, os.path.getsize(log_path) - 200_000))
            errors = ACME_ERROR.findall(f.read())
    except OSError:
        return None
    return re.sub(r"\x1b\[[0-9;]*m", "", errors[-1])[:500] if errors else None


def status(settings, acme_store, log_path):
    """What the admin panel shows about HTTPS (`settings`: the proxy's ProxySettings)."""
    if not settings.https_enabled:
        return {"enabled": False}
    if settings.tls_cert:
        with open(settings.tls_cert, "rb") as f:
            return {"enabled": True, "source": "own certificate", **_describe(f.read())}
    result = {"enabled": True, "source": "Let's Encrypt (ACME)", "last_acme_error": _last_acme_error(log_path)}
    cert = _acme_certificate(acme_store)
    return {**result, **(cert or {"issuer": "not issued yet"})}
