"""What the console tests share: signing a WebTest client in, and reading a page's CSRF
token and messages."""

import re

SIGNIN = "/ui/signin"


def sign_in(http, user="admin", password="admin", **extra):
    """Sign `http` (a webtest.TestApp) in through the sign-in form; the answer."""
    page = http.get(SIGNIN, **extra)
    form = page.forms["signin"]
    form["user"] = user
    form["password"] = password
    return form.submit(expect_errors=True, **extra)


def csrf(page):
    """The CSRF token the page's forms carry."""
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def problem(page):
    """The text of a page's error message."""
    return re.search(r'class="problem" role="alert">([^<]*)<', page.text).group(1)


def said(page):
    return re.search(r'class="said" role="status">([^<]*)<', page.text).group(1)
