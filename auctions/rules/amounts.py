"""Money in bids and settings: positive, two decimals, within numeric(12,2)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from .. import errors
from ..errors import AuctionError

MAX_AMOUNT = Decimal("9999999999.99")  # numeric(12,2)
CENT = Decimal("0.01")


def parse_amount(value: Any, *, name: str = "amount") -> Decimal:
    """A bid amount as money: positive, at most two decimals, within numeric(12,2)."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, f"{name} must be a number", field=name
        ) from None
    if not amount.is_finite():
        raise AuctionError(errors.BID_AMOUNT_INVALID, f"{name} must be a number", field=name)
    if amount <= 0:
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, f"{name} must be greater than zero", field=name
        )
    # the bound first: quantize() of a number past Decimal's precision (1e30) raises
    if amount > MAX_AMOUNT:
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, f"{name} can be at most {MAX_AMOUNT}", field=name
        )
    if amount != amount.quantize(CENT):
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, f"{name} can have at most two decimals", field=name
        )
    return amount.quantize(CENT)
