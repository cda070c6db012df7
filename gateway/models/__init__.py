"""SQLAlchemy 2 typed models, one module per area; import them from here."""

from gateway.models.base import Base, loaded, new_public_id, utcnow
from gateway.models.mail import InboundEmail, InboundStatus, Mailbox
from gateway.models.outbound import OutboxMessage, OutboxStatus
from gateway.models.tickets import (
    Agent,
    Attachment,
    AuthorType,
    Contact,
    Message,
    ParticipantRole,
    RatingLink,
    SatisfactionRating,
    Ticket,
    TicketParticipant,
    TicketPriority,
    TicketStatus,
)

__all__ = [
    "RatingLink",
    "SatisfactionRating",
    "Agent",
    "Attachment",
    "AuthorType",
    "Base",
    "Contact",
    "InboundEmail",
    "InboundStatus",
    "Mailbox",
    "Message",
    "OutboxMessage",
    "OutboxStatus",
    "ParticipantRole",
    "Ticket",
    "TicketParticipant",
    "TicketPriority",
    "TicketStatus",
    "loaded",
    "new_public_id",
    "utcnow",
]

from gateway.models.agents import AgentApiKey, AgentDigest, MailboxMembership, NotifyPolicy  # noqa: E402

__all__ += ["AgentApiKey", "AgentDigest", "MailboxMembership", "NotifyPolicy"]

from gateway.models.auth import (  # noqa: E402
    AuditEvent,
    ContactPassword,
    MagicLink,
    PendingRequest,
    PortalSession,
    RateLimitCounter,
    UsedSsoToken,
)

__all__ += ["AuditEvent", "ContactPassword", "MagicLink", "PendingRequest", "PortalSession", "RateLimitCounter", "UsedSsoToken"]

from gateway.models.help import (  # noqa: E402
    Account,
    AccountDomain,
    AccountMember,
    Article,
    ArticleCategory,
    TicketRead,
)

__all__ += ["Account", "AccountDomain", "AccountMember", "Article", "ArticleCategory", "TicketRead"]

from gateway.models.routes import (  # noqa: E402
    MailRoute,
    PayloadFormat,
    RouteMatch,
    WebhookEndpoint,
    WebhookEvent,
    WebhookStatus,
)

__all__ += ["MailRoute", "PayloadFormat", "RouteMatch", "WebhookEndpoint", "WebhookEvent", "WebhookStatus"]
