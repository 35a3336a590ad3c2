"""LDAP login against a real Debian slapd: bind_dn_template, lookup_dn, groups, a dead server."""

import pwd
import shutil
import signal
import subprocess
import sys

import pytest

from hubclient import HubClient
from hubprocess import needs_root
from ldapserver import SUFFIX, SlapdServer, entry
from pki import make_pki

pytestmark = [needs_root, pytest.mark.skipif(not shutil.which("slapd"), reason="Debian's slapd is not installed")]

PEOPLE, STAFF, GROUPS = f"ou=people,{SUFFIX}", f"ou=staff,{SUFFIX}", f"ou=groups,{SUFFIX}"
STUDENTS, TEACHERS = f"cn=students,{GROUPS}", f"cn=teachers,{GROUPS}"
AD_USERS, JUPYTER_USERS = f"ou=Domain Users,{SUFFIX}", f"cn=Jupyter Users,{GROUPS}"


@pytest.fixture(scope="session")
def ldap_users(run_id):
    return {role: f"{run_id}-{role}" for role in ("ann", "bob", "dave", "carol", "erin", "frank")}


@pytest.fixture(scope="session")
def slapd(ldap_users):
    """One slapd for the session, seeded with people in two groups (and one in none)."""
    server = SlapdServer().start()
    try:
        ann, bob, dave, carol = (ldap_users[k] for k in ("ann", "bob", "dave", "carol"))
        person = lambda dn, uid, pw: entry(dn, "objectClass: inetOrgPerson", f"uid: {uid}", f"cn: {uid}",  # noqa: E731
                                           f"sn: {uid}", f"userPassword: {pw}")
        server.ldif("ldapadd", "".join([
            entry(SUFFIX, "objectClass: dcObject", "objectClass: organization", "dc: tljh", "o: TLJH test"),
            *(entry(ou, "objectClass: organizationalUnit", f"ou: {ou.split(',')[0][3:]}")
              for ou in (PEOPLE, STAFF, GROUPS, AD_USERS)),
            person(f"uid={ann},{PEOPLE}", ann, "ann-password"),
            person(f"uid={bob},{PEOPLE}", bob, "bob-password"),
            person(f"uid={dave},{PEOPLE}", dave, "dave-password"),
            # Carol's DN does not contain her login name: only lookup_dn finds it.
            person(f"cn=Carol Jones,{STAFF}", carol, "carol-password"),
            entry(STUDENTS, "objectClass: groupOfNames", "cn: students", f"member: uid={ann},{PEOPLE}"),
            entry(TEACHERS, "objectClass: groupOfNames", "cn: teachers", f"member: uid={bob},{PEOPLE}",
                  f"member: cn=Carol Jones,{STAFF}"),
            # Active Directory's shape: CN=<full name> DNs, logins by sAMAccountName.
            *(entry(f"cn={full},{AD_USERS}", "objectClass: inetOrgPerson", "objectClass: adLogin", f"cn: {full}",
                    f"sn: {full.split()[1]}", f"sAMAccountName: {login.upper()}",
                    f"userPrincipalName: {login}@corp.test", f"userPassword: {login}-pw")
              for full, login in (("Erin Smith", ldap_users["erin"]), ("Frank Moore", ldap_users["frank"]))),
            entry(JUPYTER_USERS, "objectClass: groupOfNames", "cn: Jupyter Users",
                  f"member: cn=Erin Smith,{AD_USERS}"),
        ]))
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def accounts(ldap_users, unix_accounts):
    unix_accounts.extend(f"jupyter-{n}" for n in ldap_users.values())


@pytest.fixture(scope="module")
def template_hub(make_hub, user_env, slapd, accounts):
    return make_hub({
        "auth": {"type": "ldapauthenticator.LDAPAuthenticator", "LDAPAuthenticator": {
            "server_address": "127.0.0.1", "server_port": slapd.port, "tls_strategy": "insecure",
            "bind_dn_template": [f"uid={{username}},{STAFF}", f"uid={{username}},{PEOPLE}"],
            "allowed_groups": [STUDENTS, TEACHERS], "admin_groups": [TEACHERS],
        }},
        "user_environment": {"path": user_env},
    })


def whoami(client):
    r = client.get(client.url("/hub/api/user"), headers={"X-XSRFToken": client.cookies.get("_xsrf", "")})
    r.raise_for_status()
    return r.json()


def test_bind_dn_template_login_spawns_under_the_unix_account(template_hub, ldap_users):
    ann = ldap_users["ann"]
    client = HubClient(template_hub.url)
    assert client.login(ann.upper(), "ann-password").status_code == 302  # names are normalized
    assert whoami(client)["admin"] is False
    assert client.spawn(ann)[-1]["ready"] is True
    assert client.get(client.url(f"/user/{ann}/lab")).status_code == 200
    kernel = client.start_kernel(ann)
    uid = client.execute(ann, kernel, "import os; os.getuid()")
    assert uid == str(pwd.getpwnam(f"jupyter-{ann}").pw_uid)


def test_wrong_password_and_outsiders_get_clear_pages(template_hub, ldap_users):
    wrong = HubClient(template_hub.url).login(ldap_users["ann"], "not-her-password")
    assert wrong.status_code == 403 and "Invalid username or password" in wrong.text
    outsider = HubClient(template_hub.url).login(ldap_users["dave"], "dave-password")
    assert outsider.status_code == 403
    assert "not in a group allowed to use this hub" in outsider.text
    injection = HubClient(template_hub.url).login("*)(uid=*", "x")
    assert injection.status_code == 403 and "Invalid username or password" in injection.text
    assert "refused: not in users.allowed nor in allowed_groups" in template_hub.log()


def test_admin_follows_the_directory_at_every_login(template_hub, slapd, ldap_users):
    bob = ldap_users["bob"]
    client = HubClient(template_hub.url)
    assert client.login(bob, "bob-password").status_code == 302
    assert whoami(client)["admin"] is True
    # Bob moves from teachers to students: his next login makes him a plain user.
    slapd.ldif("ldapmodify", f"dn: {TEACHERS}\nchangetype: modify\ndelete: member\nmember: uid={bob},{PEOPLE}\n\n"
                             f"dn: {STUDENTS}\nchangetype: modify\nadd: member\nmember: uid={bob},{PEOPLE}\n\n")
    again = HubClient(template_hub.url)
    assert again.login(bob, "bob-password").status_code == 302
    assert whoami(again)["admin"] is False


def test_lookup_dn_with_a_search_user(make_hub, slapd, ldap_users, accounts):
    carol = ldap_users["carol"]
    hub = make_hub({"auth": {"type": "ldap", "LDAPAuthenticator": {
        "server_address": "127.0.0.1", "server_port": slapd.port, "tls_strategy": "insecure",
        "lookup_dn": True, "user_search_base": SUFFIX, "user_attribute": "uid",
        "lookup_dn_search_user": f"cn=admin,{SUFFIX}", "lookup_dn_search_password": slapd.admin_password,
        "allowed_groups": [TEACHERS],
    }}})
    client = HubClient(hub.url)
    assert client.login(carol, "carol-password").status_code == 302
    assert whoami(client)["name"] == carol
    assert HubClient(hub.url).login(carol, "ann-password").status_code == 403
    assert HubClient(hub.url).login(ldap_users["ann"], "ann-password").status_code == 403  # not a teacher
    assert HubClient(hub.url).login(f"{carol}x", "carol-password").status_code == 403  # no such entry
    # The search user's password is never logged, and `tljh-config show` masks it.
    assert slapd.admin_password not in hub.log()
    shown = subprocess.run([sys.executable, "-m", "tljh_daemon.config_cli", "--prefix", hub.prefix, "show"],
                           capture_output=True, text=True, check=True).stdout
    assert "lookup_dn_search_password" in shown and slapd.admin_password not in shown


def test_active_directory_shape_login_by_sam_account_name(make_hub, slapd, ldap_users, accounts):
    """AD's usual setup: a service account finds the entry by sAMAccountName (DNs hold the full
    name, not the login), the user binds with the found DN, groups list members by that DN."""
    erin, frank = ldap_users["erin"], ldap_users["frank"]
    hub = make_hub({"auth": {"type": "ldap", "LDAPAuthenticator": {
        "server_address": "127.0.0.1", "server_port": slapd.port, "tls_strategy": "insecure",
        "lookup_dn": True, "user_search_base": AD_USERS, "user_attribute": "sAMAccountName",
        "lookup_dn_search_user": f"cn=admin,{SUFFIX}", "lookup_dn_search_password": slapd.admin_password,
        "allowed_groups": [JUPYTER_USERS], "admin_groups": [JUPYTER_USERS],
    }}})
    client = HubClient(hub.url)
    assert client.login(erin, f"{erin}-pw").status_code == 302  # sAMAccountName matches case-insensitively
    me = whoami(client)
    assert (me["name"], me["admin"]) == (erin, True)
    assert HubClient(hub.url).login(erin, f"{frank}-pw").status_code == 403
    outsider = HubClient(hub.url).login(frank, f"{frank}-pw")
    assert outsider.status_code == 403 and "not in a group allowed" in outsider.text


def test_a_dead_ldap_server_gives_a_clear_page_and_one_log_line(template_hub, slapd, ldap_users):
    before = template_hub.log().count("unreachable during the login")
    slapd.stop()
    try:
        r = HubClient(template_hub.url).login(ldap_users["ann"], "ann-password")
        assert r.status_code == 403
        assert "cannot be reached right now" in r.text
        log = template_hub.log()
        assert log.count("unreachable during the login") == before + 1
        assert "Traceback" not in log
    finally:
        slapd.start()
    assert HubClient(template_hub.url).login(ldap_users["ann"], "ann-password").status_code == 302


def test_switching_to_firstuse_keeps_directory_accounts_from_strangers(make_hub, slapd, ldap_users, accounts,
                                                                       run_id):
    """After LDAP -> firstuse, typing the name of an LDAP-made admin must not claim it: the
    switch ends every session, the account is refused until an admin hands it over."""
    ann, boss = ldap_users["ann"], f"{run_id}-boss"
    hub = make_hub({"auth": {"type": "ldap", "LDAPAuthenticator": {
        "server_address": "127.0.0.1", "server_port": slapd.port, "tls_strategy": "insecure",
        "bind_dn_template": [f"uid={{username}},{PEOPLE}"],
        "allowed_groups": [STUDENTS], "admin_groups": [STUDENTS],
    }}})
    ldap_session = HubClient(hub.url)
    assert ldap_session.login(ann, "ann-password").status_code == 302
    assert whoami(ldap_session)["admin"] is True

    hub.kill(signal.SIGTERM)
    hub.update_config(auth={"type": "firstuse"}, users={"admin": [boss]})
    hub.start()
    assert "auth.type changed from ldap to firstuse: ended 1 login sessions" in hub.log()
    assert ldap_session.get(ldap_session.url("/hub/api/user")).status_code == 403, "the old session ended"
    for attempt in ("stranger-1", "stranger-2"):  # the first one set no password either
        stranger = HubClient(hub.url).login(ann, attempt)
        assert stranger.status_code == 403, stranger.text[-500:]
        assert f"The account {ann} was made by another sign-in method (ldap)" in stranger.text

    admin = HubClient(hub.url)
    assert admin.login(boss, "boss-password").status_code == 302  # users.admin, first use
    page = admin.get(admin.url(f"/hub/auth/change-password/{ann}"))
    assert page.status_code == 200
    r = admin.post(admin.url(f"/hub/auth/change-password/{ann}"),
                   data={"_xsrf": admin.xsrf_from(page.text), "new_password": "handed-over-42"})
    assert r.status_code == 200 and "was set" in r.text, r.text[-500:]
    assert HubClient(hub.url).login(ann, "stranger-3").status_code == 403
    again = HubClient(hub.url)
    assert again.login(ann, "handed-over-42").status_code == 302
    assert whoami(again)["name"] == ann


def test_binds_refused_for_the_setup_are_named_for_what_they_are(make_hub, ldap_users, accounts, tmp_path):
    """A directory that requires TLS for simple binds (as AD with LDAP signing, answering
    strongerAuthRequired; here OpenLDAP's `security simple_bind=`, confidentialityRequired),
    and a certificate that does not name server_address: each login page and log line says
    so, instead of "Invalid username or password"."""
    ann = ldap_users["ann"]
    pki = make_pki(str(tmp_path), hosts=("localhost",))
    server = SlapdServer().start()
    try:
        server.ldif("ldapadd", "".join([
            entry(SUFFIX, "objectClass: dcObject", "objectClass: organization", "dc: tljh", "o: TLJH test"),
            entry(PEOPLE, "objectClass: organizationalUnit", "ou: people"),
            entry(f"uid={ann},{PEOPLE}", "objectClass: inetOrgPerson", f"uid: {ann}", f"cn: {ann}", f"sn: {ann}",
                  "userPassword: ann-password"),
        ]))
        server.restart_with(f"TLSCACertificateFile {pki['ca']}", f"TLSCertificateFile {pki['cert']}",
                            f"TLSCertificateKeyFile {pki['key']}", "security simple_bind=128")

        def hub_with(**settings):
            return make_hub({"auth": {"type": "ldap", "LDAPAuthenticator": {
                "server_address": "127.0.0.1", "server_port": server.port,
                "bind_dn_template": [f"uid={{username}},{PEOPLE}"], **settings}}})

        plain = hub_with(tls_strategy="insecure")
        r = HubClient(plain.url).login(ann, "ann-password")
        assert r.status_code == 403 and "requires an encrypted connection (TLS)" in r.text, r.text[-800:]
        assert "Invalid username or password" not in r.text
        assert "confidentialityRequired (LDAP result 13)" in plain.log() and "tls_strategy" in plain.log()
        assert "lookup_dn_search_user could not bind" not in plain.log()

        by_address = hub_with(tls_kwargs={"ca_certs_file": pki["ca"]})  # StartTLS; the certificate names localhost
        r = HubClient(by_address.url).login(ann, "ann-password")
        assert r.status_code == 403 and "TLS certificate is not trusted" in r.text, r.text[-800:]
        assert "does not name 127.0.0.1" in by_address.log(), by_address.log()[-2000:]

        by_name = hub_with(server_address="localhost", tls_kwargs={"ca_certs_file": pki["ca"]})
        assert HubClient(by_name.url).login(ann, "ann-password").status_code == 302
        assert HubClient(by_name.url).login(ann, "wrong-password").status_code == 403
    finally:
        server.cleanup()
