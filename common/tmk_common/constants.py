"""Names that the operator, the API service, the site, the chart and the tests all agree on."""

GROUP = "tmk.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

INSTALL_KIND = "TmkInstall"
INSTALL_PLURAL = "tmkinstalls"
SESSION_KIND = "TmkSession"
SESSION_PLURAL = "tmksessions"

# Labels every child object carries, so that `kubectl get all -l tmk.io/install=demo` finds a stack.
LABEL_INSTALL = f"{GROUP}/install"
LABEL_COMPONENT = f"{GROUP}/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "tmk-operator"

# Labels on a TmkSession: what the API looks sessions up by without listing them all.
LABEL_SESSION_ID = f"{GROUP}/session-id"
LABEL_IDEMPOTENCY_KEY = f"{GROUP}/idempotency-key"

# The XMPP domain Jitsi's components use inside the cluster; a token's `sub` names it.
XMPP_DOMAIN = "meet.jitsi"
