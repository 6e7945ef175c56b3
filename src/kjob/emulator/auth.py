"""Who is calling: HTTP Basic (username and API key) or a Bearer access token.

    Auth(users={"alice": KEY})            only these usernames and keys
    Auth(tokens={TOKEN: "alice"})         only these tokens, each signing in as its user
    Auth(token_user="alice")              open door: any username with any key, any token as alice

With neither `users` nor `tokens` the door is open (a rehearsal needs no real secrets), but
every caller is still someone: a Basic caller is the username it sends, a token caller is
`token_user`. Without a `token_user` an open door refuses tokens, because it could not tell
whose kernels they may touch. Credentials are compared in constant time and never kept.

`introspect` answers `security.OAuthService/IntrospectToken`, through which the official
client learns the username behind `KAGGLE_API_TOKEN` or `~/.kaggle/access_token`.
"""

import base64
import binascii
import hmac


class Auth:
    def __init__(self, users: dict[str, str] | None = None, tokens: dict[str, str] | None = None,
                 token_user: str | None = None):
        self.users, self.tokens, self.token_user = users, tokens, token_user

    @property
    def open_door(self) -> bool:
        return self.users is None and self.tokens is None

    def check(self, header: str | None) -> tuple[str | None, str]:
        """(the caller's username, "") when `header` signs in; (None, why not) otherwise."""
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, key = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None, "malformed Basic credentials"
            if self.open_door:
                return (user, "") if user and key else (None, "a username and a key are both needed")
            expected = (self.users or {}).get(user)
            if expected is not None and hmac.compare_digest(expected, key):
                return user, ""
            return None, "unknown username or wrong key"
        if scheme.lower() == "bearer" and value:
            user = self.introspect(value)
            if user:
                return user, ""
            if self.open_door:
                return None, "this emulator signs no token in: start it with --user NAME (tokens sign in as NAME)"
            return None, "unknown or expired access token"
        return None, "missing credentials"

    def introspect(self, token: str) -> str | None:
        """The username a token signs in as, or None."""
        if self.open_door:
            return self.token_user if token else None
        for known, user in (self.tokens or {}).items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        return None
