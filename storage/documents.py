"""The pieces every Management API document is made of: links under `/rest/v1/`, audit fields,
pages of a collection, and the dropping of empty fields.

`storage.fleet` (targets, actions, configuration) and `storage.software` (modules, sets,
artifacts) both render with these, so a link or a page looks the same whichever rules built it.
"""

import urllib.parse

API = "/rest/v1/"


def segment(text):
    """A path segment as Spring writes it: pchar characters stay, the rest is %-encoded."""
    return urllib.parse.quote(str(text), safe="-._~!$&'()*+,;=:@")


def link(base, path, name=None):
    href = {"href": base + API + path}
    if name is not None:
        href["name"] = name
    return href


def clean(document):
    """The document without its None fields (hawkBit's Jackson leaves them out)."""
    return {key: value for key, value in document.items() if value is not None}


def audit_fields(row):
    return {"createdBy": row.created_by, "createdAt": row.created_at,
            "lastModifiedBy": row.last_modified_by, "lastModifiedAt": row.last_modified_at}


def paged(content, total):
    return {"content": content, "total": total, "size": len(content)}
