"""Groups of users (JupyterHub's groups: a name, members and free-form properties)."""

import json


def names_of_user(db, user):
    return [r["group_name"] for r in db.all("SELECT group_name FROM group_members WHERE user=? ORDER BY group_name", (user,))]


def names_of_users(db, names):
    """{user: [group, ...]} for many users in one query (users in no group are left out)."""
    memberships: dict = {}
    marks = ",".join("?" * len(names))
    for r in db.all(f"SELECT user, group_name FROM group_members WHERE user IN ({marks}) ORDER BY group_name", names):
        memberships.setdefault(r["user"], []).append(r["group_name"])
    return memberships


def members(db, group):
    return [r["user"] for r in db.all("SELECT user FROM group_members WHERE group_name=? ORDER BY user", (group,))]


def get(db, name):
    return db.one("SELECT * FROM groups WHERE name=?", (name,))


def model(db, row, roles=None):
    """A group's REST model; `roles` (roles.Roles) names the roles given to it."""
    return {
        "kind": "group",
        "name": row["name"],
        "users": members(db, row["name"]),
        "properties": json.loads(row["properties"]),
        "roles": roles.group_roles(row["name"]) if roles is not None else [],
    }


def create(db, name, properties=None):
    db.execute("INSERT INTO groups (name, properties) VALUES (?, ?)", (name, json.dumps(properties or {})))


def add_members(db, group, names):
    for name in names:
        db.execute("INSERT OR IGNORE INTO group_members (group_name, user) VALUES (?, ?)", (group, name))


def remove_members(db, group, names):
    for name in names:
        db.execute("DELETE FROM group_members WHERE group_name=? AND user=?", (group, name))


def load(db, mapping):
    """JupyterHub.load_groups: create each group (if missing) and add its members (creating
    their user rows, as JupyterHub does); members added by hand are kept."""
    from . import users

    for group, names in mapping.items():
        if get(db, group) is None:
            create(db, group)
        members = sorted(users.valid_names(names))
        for name in members:
            users.ensure_user(db, name)
        add_members(db, group, members)
