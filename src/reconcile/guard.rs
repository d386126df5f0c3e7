//! The deletion guard: orphans (Attio users of a route that the provider's complete listing did
//! not name) are deleted only when nothing suggests the listing, rather than the users, is what
//! went missing.

use thiserror::Error;

/// What a run knows when it is about to delete orphans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    /// Whether the provider's paging ended as documented (no error, no loop, no stop).
    pub complete: bool,
    /// Users the provider listed.
    pub listed: u64,
    /// Attio's users of this route, orphans included.
    pub attio_users: u64,
    /// Attio's users of this route that the listing did not name.
    pub orphans: u64,
}

/// Why orphans are not deleted. Each is a reason to look before deleting anyone.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The listing stopped before its end: users it did not reach are not gone.
    #[error(
        "the provider's listing did not complete, so the {orphans} users it did not name may still be there; nothing was deleted"
    )]
    Incomplete {
        /// Orphans found so far.
        orphans: u64,
    },
    /// A resumed run listed only the users after its checkpoint.
    #[error(
        "a resumed run did not list every user itself, so it cannot tell who is gone; run again from the start to delete orphans"
    )]
    Resumed,
    /// The provider listed nobody: more likely a wrong key or tenant than every user gone.
    #[error("the provider listed no users at all (a wrong key or tenant?); nothing was deleted")]
    NothingListed,
    /// More orphans than the limit allows.
    #[error(
        "{orphans} users would be deleted, over --max-deletes {max}; check them in the report, then rerun with a higher --max-deletes"
    )]
    TooMany {
        /// Orphans found.
        orphans: u64,
        /// The limit.
        max: u64,
    },
}

/// `--max-deletes`'s default: the larger of 10 and 1 % of Attio's users of the route, rounded up.
pub fn default_max_deletes(attio_users: u64) -> u64 {
    attio_users.div_ceil(100).max(10)
}

/// Whether the orphans of `listing` may be deleted, with at most `max_deletes` (`None`: the
/// default for the route's users). As many orphans as the limit are allowed; one more is not.
pub fn may_delete(listing: Listing, max_deletes: Option<u64>) -> Result<(), Refusal> {
    if !listing.complete {
        return Err(Refusal::Incomplete {
            orphans: listing.orphans,
        });
    }
    if listing.listed == 0 {
        return Err(Refusal::NothingListed);
    }
    let max = max_deletes.unwrap_or_else(|| default_max_deletes(listing.attio_users));
    if listing.orphans > max {
        return Err(Refusal::TooMany {
            orphans: listing.orphans,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(listed: u64, attio_users: u64, orphans: u64) -> Listing {
        Listing {
            complete: true,
            listed,
            attio_users,
            orphans,
        }
    }

    #[test]
    fn the_default_limit_is_ten_or_one_percent_rounded_up() {
        assert_eq!(default_max_deletes(0), 10);
        assert_eq!(default_max_deletes(1_000), 10);
        assert_eq!(default_max_deletes(1_001), 11);
        assert_eq!(default_max_deletes(100_000), 1_000);
    }

    #[test]
    fn as_many_orphans_as_the_limit_are_deleted_and_one_more_is_refused() {
        assert_eq!(may_delete(listing(990, 1_001, 11), None), Ok(()));
        assert_eq!(
            may_delete(listing(989, 1_001, 12), None),
            Err(Refusal::TooMany {
                orphans: 12,
                max: 11
            })
        );
        assert_eq!(may_delete(listing(50, 60, 10), Some(10)), Ok(()));
        assert_eq!(
            may_delete(listing(50, 60, 10), Some(9)),
            Err(Refusal::TooMany {
                orphans: 10,
                max: 9
            })
        );
    }

    #[test]
    fn an_incomplete_or_empty_listing_deletes_nobody() {
        let cut_short = Listing {
            complete: false,
            ..listing(500, 1_000, 3)
        };
        assert_eq!(
            may_delete(cut_short, Some(1_000)),
            Err(Refusal::Incomplete { orphans: 3 })
        );
        assert_eq!(
            may_delete(listing(0, 40, 40), Some(1_000)),
            Err(Refusal::NothingListed)
        );
    }
}
