"""Security: headers, HTTPS, Content-Security-Policy, API-token and admin-login lockouts."""

from __future__ import annotations

from datetime import timedelta as _timedelta

from notifyplatform.conf.env import env_bool, env_int

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# HTTPS deployment: NP_HTTPS=1 marks cookies Secure, redirects HTTP to HTTPS (except the
# probes, which load balancers and Prometheus call on the inside) and sends HSTS.
# NP_BEHIND_PROXY=1 trusts the proxy's X-Forwarded-Proto (only behind a proxy that sets
# it and strips a client's; or run daphne with --proxy-headers instead).
NP_HTTPS = env_bool("NP_HTTPS", False)
if NP_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("NP_HSTS_SECONDS", 365 * 86400)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("NP_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("NP_HSTS_PRELOAD", True)
if env_bool("NP_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy on every response (django-csp): scripts from this site only,
# inline ones only with the response's nonce; no plugins, frames or foreign forms. Inline
# style attributes stay allowed (admin badges, the dashboard's SVG). NP_CSP=0 turns it off.
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE  # noqa: E402

csp_enabled = env_bool("NP_CSP", True)
if csp_enabled:
    CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            "default-src": [SELF],
            "script-src": [SELF, NONCE],
            "style-src": [SELF, UNSAFE_INLINE],
            # https: images: a notification's rich_content image (https only) on the demo inbox
            "img-src": [SELF, "data:", "https:"],
            "font-src": [SELF, "data:"],
            "connect-src": [SELF],  # includes ws(s):// to this host (CSP level 3)
            "object-src": [NONE],
            "base-uri": [SELF],
            "form-action": [SELF],
            "frame-ancestors": [NONE],
            **({"upgrade-insecure-requests": True} if NP_HTTPS else {}),
        }
    }

# Failed API-token authentications per client address: past the limit within the window,
# token requests from that address get 429 with Retry-After (users/lockout.py).
NP_TOKEN_FAILURE_LIMIT = env_int("NP_TOKEN_FAILURE_LIMIT", 20)
NP_TOKEN_FAILURE_WINDOW_SECONDS = env_int("NP_TOKEN_FAILURE_WINDOW_SECONDS", 900)
# Admin logins (django-axes): an account, and separately an address, with
# NP_LOGIN_FAILURE_LIMIT failed logins is locked out (429) for NP_LOGIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out accounts/addresses first
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("NP_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = _timedelta(minutes=env_int("NP_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # each on its own, not the pair
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "users.lockout.client_address"
AXES_USERNAME_CALLABLE = "users.lockout.login_username"
AXES_USERNAME_FORM_FIELD = "username"  # the admin login form's field (accounts use email)
AXES_HTTP_RESPONSE_CODE = 429
