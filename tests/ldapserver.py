"""A throw-away OpenLDAP server (Debian's slapd) on a free loopback port, seeded with ldapadd."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from hubprocess import free_port

SUFFIX = "dc=tljh,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
# Active Directory's login attributes, so entries can have AD's shape (CN=Full Name DNs,
# logins by sAMAccountName). OIDs under 2.25 (UUID-based, needs no registration).
AD_SCHEMA = """
attributetype ( 2.25.178945602513186151735812650284178243401.1 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 2.25.178945602513186151735812650284178243401.2 NAME 'userPrincipalName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 2.25.178945602513186151735812650284178243401.3 NAME 'adLogin' SUP top AUXILIARY
    MAY ( sAMAccountName $ userPrincipalName ) )
"""


class SlapdServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tljh-test-slapd-")
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}/"
        self.admin_password = "admin-" + os.urandom(6).hex()
        self.proc = None
        os.makedirs(os.path.join(self.dir, "db"))
        with open(os.path.join(self.dir, "ad.schema"), "w") as f:
            f.write(AD_SCHEMA)
        with open(self.conf, "w") as f:
            f.write("".join(f"include /etc/ldap/schema/{s}.schema\n" for s in SCHEMAS))
            f.write(f"include {self.dir}/ad.schema\n")
            f.write(
                f"pidfile {self.dir}/slapd.pid\n"
                "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
                f'database mdb\nsuffix "{SUFFIX}"\nrootdn "{ADMIN_DN}"\nrootpw {self.admin_password}\n'
                f"directory {self.dir}/db\nmaxsize 10485760\n"
            )

    @property
    def conf(self):
        return os.path.join(self.dir, "slapd.conf")

    def start(self, timeout=30):
        log = open(os.path.join(self.dir, "slapd.log"), "ab")
        # -d keeps slapd in the foreground, so this process is the one to stop.
        self.proc = subprocess.Popen(["slapd", "-d", "0", "-h", self.url, "-f", self.conf],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"slapd did not listen: {self.log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        with open(os.path.join(self.dir, "slapd.log"), errors="replace") as f:
            return f.read()[-2000:]

    def restart_with(self, *lines):
        """Stop, add global directives to slapd.conf (TLS files, `security ...`), start again."""
        self.stop()
        with open(self.conf) as f:
            conf = f.read()
        with open(self.conf, "w") as f:
            f.write("".join(line + "\n" for line in lines) + conf)  # global directives come first
        return self.start()

    def ldif(self, tool, text):
        """Run ldapadd/ldapmodify as the directory's admin."""
        subprocess.run([tool, "-x", "-H", self.url, "-D", ADMIN_DN, "-w", self.admin_password],
                       input=text, text=True, check=True, capture_output=True)


def entry(dn, *lines):
    return f"dn: {dn}\n" + "".join(line + "\n" for line in lines) + "\n"
