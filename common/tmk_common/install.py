"""Pydantic models of the TmkInstall custom resource (spec and status).

They mirror `crds/tmkinstalls.yaml` field by field (a unit test walks both and checks that names, defaults and
enums agree), so that the operator reads a spec with the same defaults the API server applied.
"""

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .constants import TRUSTED_PROXIES

# RE2-compatible (the API server's regex engine): lower-case DNS labels, at least two of them.
DNS_NAME_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A Kubernetes object name (DNS-1123 subdomain).
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# An IPv4 or IPv6 address, optionally `#<public port>` when NAT maps the media port to another one.
ADVERTISE_ADDRESS_PATTERN = r"^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)(#[0-9]{1,5})?$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
HOST_PORT_PATTERN = r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$"
HTTP_URL_PATTERN = r"^https?://\S+$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

DEFAULT_JITSI_TAG = "stable-11146-2"
DEFAULT_JITSI_REGISTRY = "ghcr.io/jitsi"
DEFAULT_MEDIA_NODE_LABEL = "tmk.io/media"
# The managed TURN server's image (coturn's own Debian-based image), pinned like the Jitsi tag: a release of the
# image is chosen on purpose, never followed.
DEFAULT_TURN_IMAGE = "coturn/coturn:4.17.0-r0-debian"


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors, as in a structural CRD schema."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Domains(Model):
    site: str = Field(max_length=253, pattern=DNS_NAME_PATTERN)
    api: str = Field(max_length=253, pattern=DNS_NAME_PATTERN)
    jitsi: str = Field(max_length=253, pattern=DNS_NAME_PATTERN)


class IssuerRef(Model):
    name: str = Field(min_length=1)
    kind: Literal["Issuer", "ClusterIssuer"] = "ClusterIssuer"


class Tls(Model):
    secret_name: str | None = Field(default=None, pattern=OBJECT_NAME_PATTERN, max_length=253)
    issuer_ref: IssuerRef | None = None


class JitsiImages(Model):
    web: str | None = None
    prosody: str | None = None
    jicofo: str | None = None
    jvb: str | None = None
    jibri: str | None = None


class Jitsi(Model):
    tag: str = Field(default=DEFAULT_JITSI_TAG, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    registry: str = Field(default=DEFAULT_JITSI_REGISTRY, min_length=1)
    images: JitsiImages | None = None
    jwt_app_id: str = Field(default="tmk", pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)


AdvertiseAddress = Annotated[str, Field(pattern=ADVERTISE_ADDRESS_PATTERN)]


class Jvb(Model):
    networking: Literal["hostNetwork", "hostPort"] = "hostNetwork"
    port: int = Field(default=10000, ge=1024, le=65535)
    # One list for the one media node; with several, each node's own list (the node name is the key).
    advertise_addresses: list[AdvertiseAddress] | None = None
    node_advertise_addresses: dict[str, list[AdvertiseAddress]] | None = None
    media_node_label: str = Field(default=DEFAULT_MEDIA_NODE_LABEL, min_length=1, max_length=317)
    stun_servers: list[Annotated[str, Field(pattern=HOST_PORT_PATTERN)]] | None = None


class Autoscaling(Model):
    enabled: bool = False
    min_units: int = Field(default=1, ge=0)
    max_units: int = Field(default=4, ge=0)
    idle_units: int = Field(default=1, ge=0)
    cooldown_seconds: int = Field(default=300, ge=0)
    # A unit is kept idle for each consenting session this long before its start.
    scheduled_lead_seconds: int = Field(default=300, ge=0, le=86400)


class Jibri(Model):
    enabled: bool = False
    units: int = Field(default=1, ge=0)
    autoscaling: Autoscaling | None = None


def network(value: str) -> str:
    """A CIDR, in the form uvicorn compares addresses with (host bits cleared, as Kubernetes' isCIDR allows them).
    A bare address is refused, as isCIDR refuses it."""
    if "/" not in value:
        raise ValueError("must be a network in CIDR form, such as 10.0.0.0/8")
    return str(ipaddress.ip_network(value, strict=False))


class Api(Model):
    replicas: int = Field(default=2, ge=1)
    image: str | None = None
    keyless: bool = False
    public_requests_per_second: int = Field(default=20, ge=1, le=100000)
    trusted_proxies: list[Annotated[str, Field(max_length=43), AfterValidator(network)]] = Field(
        default=list(TRUSTED_PROXIES), max_length=64)


class Contact(Model):
    """How patients reach the clinic, shown on every page that tells them to contact it."""

    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ()-]{2,30}$")
    address: str | None = Field(default=None, max_length=300)


class Site(Model):
    replicas: int = Field(default=2, ge=1)
    image: str | None = None
    default_language: Literal["ru", "en"] = "ru"
    company_name: str | None = Field(default=None, max_length=200)
    company_logo_url: str | None = Field(default=None, pattern=r"^https://")
    contact: Contact = Field(default_factory=Contact)


class Sessions(Model):
    default_duration_seconds: int = Field(default=3600, ge=60, le=86400)
    retention_seconds: int = Field(default=604800, ge=0)


class Recordings(Model):
    storage_size: str = Field(default="50Gi", pattern=QUANTITY_PATTERN)
    storage_class_name: str | None = None
    retention_days: int = Field(default=30, ge=1)
    delete_with_install: bool = False


class SecretKeyRef(Model):
    name: str = Field(pattern=OBJECT_NAME_PATTERN, max_length=253)
    key: str = Field(pattern=SECRET_KEY_PATTERN, max_length=253)


class Sms(Model):
    """A generic HTTP SMS gateway: one request per message, its body rendered from a template."""

    url: str = Field(pattern=HTTP_URL_PATTERN, max_length=2048)
    method: Literal["POST", "GET"] = "POST"
    content_type: str = Field(default="application/json", min_length=1, max_length=255)
    body_template: str = Field(min_length=1, max_length=8192)
    headers: dict[str, str] | None = None
    credentials_secret_ref: SecretKeyRef | None = None
    rate_per_number_per_hour: int = Field(default=5, ge=1, le=100)


class Webhooks(Model):
    url: str = Field(pattern=HTTP_URL_PATTERN, max_length=2048)
    secret_ref: SecretKeyRef


class ManagedTurn(Model):
    """coturn, run by the operator on every media node."""

    host: str = Field(max_length=253, pattern=DNS_NAME_PATTERN)
    port: int = Field(default=3478, ge=1, le=65535)
    tls_port: int = Field(default=443, ge=1, le=65535)
    tls_secret_name: str = Field(max_length=253, pattern=OBJECT_NAME_PATTERN)
    relay_min_port: int = Field(default=49152, ge=1024, le=65535)
    relay_max_port: int = Field(default=65535, ge=1024, le=65535)
    image: str = Field(default=DEFAULT_TURN_IMAGE, min_length=1)


class ExternalTurn(Model):
    """A TURN server run elsewhere that accepts the TURN REST API's time-limited credentials."""

    host: str = Field(max_length=253, pattern=DNS_NAME_PATTERN)
    port: int = Field(default=3478, ge=1, le=65535)
    transports: list[Literal["udp", "tcp"]] = ["udp", "tcp"]
    tls_port: int | None = Field(default=None, ge=1, le=65535)
    secret_ref: SecretKeyRef


class Turn(Model):
    managed: ManagedTurn | None = None
    external: ExternalTurn | None = None
    credential_ttl_seconds: int = Field(default=86400, ge=3600, le=604800)


class Secrets(Model):
    existing_secret_name: str | None = Field(default=None, pattern=OBJECT_NAME_PATTERN, max_length=253)


class Toleration(Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class Resources(Model):
    requests: dict[str, int | str] | None = None
    limits: dict[str, int | str] | None = None


class ComponentOptions(Model):
    resources: Resources | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None


class Components(Model):
    web: ComponentOptions | None = None
    prosody: ComponentOptions | None = None
    jicofo: ComponentOptions | None = None
    jvb: ComponentOptions | None = None
    jibri: ComponentOptions | None = None
    api: ComponentOptions | None = None
    site: ComponentOptions | None = None
    turn: ComponentOptions | None = None


class InstallSpec(Model):
    domains: Domains
    tls: Tls
    ingress_class_name: str | None = None
    jitsi: Jitsi = Field(default_factory=Jitsi)
    jvb: Jvb = Field(default_factory=Jvb)
    turn: Turn | None = None
    jibri: Jibri = Field(default_factory=Jibri)
    api: Api = Field(default_factory=Api)
    site: Site = Field(default_factory=Site)
    sessions: Sessions = Field(default_factory=Sessions)
    recordings: Recordings = Field(default_factory=Recordings)
    secrets: Secrets = Field(default_factory=Secrets)
    components: Components | None = None
    sms: Sms | None = None
    webhooks: Webhooks | None = None

    def component(self, name: str) -> ComponentOptions:
        """The scheduling/resources options of one component (empty when not given)."""
        return getattr(self.components, name, None) or ComponentOptions()


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str | None = None
    last_transition_time: str
    observed_generation: int | None = None


class Urls(Model):
    site: str | None = None
    api: str | None = None
    jitsi: str | None = None


class JibriStatus(Model):
    units: int | None = None
    selector: str | None = None
    wanted: int | None = None
    busy: int | None = None
    idle: int | None = None
    starting: int | None = None
    unhealthy: int | None = None
    draining: int | None = None
    last_scale_time: str | None = None
    held_for_scheduled: int | None = None


class BridgeStatus(Model):
    node: str
    addresses: list[str]


class JvbStatus(Model):
    addresses: list[str] = Field(default_factory=list)
    bridges: list[BridgeStatus] = Field(default_factory=list)


class TurnStatus(Model):
    servers: list[str] = Field(default_factory=list)


class InstallStatus(Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    urls: Urls | None = None
    jibri: JibriStatus | None = None
    jvb: JvbStatus | None = None
    turn: TurnStatus | None = None
    scheduled_recordings: int | None = None
