"""Domain errors of the auctions app: a stable UPPER_SNAKE code, a message a person can
read, the input field at fault (if any) and the HTTP status the API answers with."""

from __future__ import annotations

from notifyplatform.errors import DomainError


class AuctionError(DomainError):
    pass


# Error codes (documented in the README's error table)
BID_RULES_UNAVAILABLE = "BID_RULES_UNAVAILABLE"
BID_TOO_LOW = "BID_TOO_LOW"
BID_AMOUNT_INVALID = "BID_AMOUNT_INVALID"
BID_NOT_NEXT_PRICE = "BID_NOT_NEXT_PRICE"
ALREADY_LEADING = "ALREADY_LEADING"
SEALED_BID_EXISTS = "SEALED_BID_EXISTS"
SELLER_CANNOT_BID = "SELLER_CANNOT_BID"
AUCTION_NOT_ACTIVE = "AUCTION_NOT_ACTIVE"
AUCTION_ENDED = "AUCTION_ENDED"
AUCTION_NOT_FOUND = "AUCTION_NOT_FOUND"
ITEM_NOT_IN_AUCTION = "ITEM_NOT_IN_AUCTION"
