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

# The field managers the API server records for each process's writes (`kubectl get -o yaml --show-managed-fields`
# shows who wrote which field). The operator's handlers' status changes are written by kopf, as `kopf`.
FIELD_MANAGER_OPERATOR = "tmk-operator"
FIELD_MANAGER_API = "tmk-api"

# Labels on a TmkSession: what the API looks sessions up by without listing them all.
LABEL_SESSION_ID = f"{GROUP}/session-id"
LABEL_IDEMPOTENCY_KEY = f"{GROUP}/idempotency-key"
# The session's room (also its annotation): prosody's session gate asks about rooms by name.
LABEL_ROOM = f"{GROUP}/room"

# The XMPP domain Jitsi's components use inside the cluster; a token's `sub` names it.
XMPP_DOMAIN = "meet.jitsi"

# Pins one JVB Deployment's pods to its media node (the Service of that JVB selects it too).
LABEL_MEDIA_NODE = f"{GROUP}/media-node"

# The Secret `<install>-jitsi` (or spec.secrets.existingSecretName) holds exactly these keys.
JITSI_SECRET_KEYS = (
    "JWT_APP_SECRET",
    "JICOFO_AUTH_PASSWORD",
    "JVB_AUTH_PASSWORD",
    "JIBRI_RECORDER_PASSWORD",
    "JIBRI_XMPP_PASSWORD",
)
# The API-keys Secret `<install>-api-keys` is mounted here in the API pods, one file per key id.
API_KEYS_DIR = "/etc/tmk/api-keys"
DEFAULT_API_KEY_ID = "default"

API_PORT = 8080
SITE_PORT = 4000

# The ConfigMap `<install>-session-ids` holds the API's counter for the integer `sessionId`.
SESSION_IDS_CONFIGMAP_SUFFIX = "session-ids"
# The ConfigMap `<install>-sms-rate` holds recent SMS sends per number hash, for the API's shared rate limit.
SMS_RATE_CONFIGMAP_SUFFIX = "sms-rate"

# A Jibri unit's state, on its Pod, as its last webhook report said (the API writes them; the operator and
# `kubectl get pods -L tmk.io/jibri-status` read them). Values are lower-case: idle|busy|expired, healthy|unhealthy.
LABEL_JIBRI_STATUS = f"{GROUP}/jibri-status"
LABEL_JIBRI_HEALTH = f"{GROUP}/jibri-health"
# Set by the operator on a unit it has chosen to remove: it goes as soon as it is not recording.
LABEL_JIBRI_DRAINING = f"{GROUP}/jibri-draining"
ANNOTATION_JIBRI_REPORTED_AT = f"{GROUP}/jibri-reported-at"

# Proxies whose X-Forwarded-For the API believes (the Ingress controller, the site): loopback and the private ranges
# that pods, Services and in-cluster load balancers are given addresses from.
TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
