//! Which bytes a download answers with, from the request's `Range` and `If-Range` headers
//! (RFC 9110 §14): the whole object, one range of it, or nothing (416).
//!
//! Only single byte ranges are served as ranges. A request with several ranges gets the whole
//! object (RFC 9110 lets a server ignore `Range`), so a header listing a thousand ranges costs
//! one scan for a comma and never a thousand reads. A header in another unit, or one that does
//! not parse, is ignored the same way. A range that is well formed but cannot be served
//! (`bytes=-0`, `bytes=5-1`, or a start at or past the end) is refused with 416.

/// What a download sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole object, with 200.
    Whole,
    /// Bytes `first..=last` of the object, with 206 and `Content-Range`.
    Partial {
        /// The first byte sent.
        first: u64,
        /// The last byte sent (inclusive, as `Content-Range` counts).
        last: u64,
    },
    /// Nothing, with 416 and `Content-Range: bytes */<size>`.
    Unsatisfiable,
}

/// The longest decimal number a range may carry (u64 has 20 digits).
const MAX_DIGITS: usize = 20;

/// Answers a `Range` header for an object of `size` bytes whose entity tag is `etag`.
/// `if_range` is the request's `If-Range` header: when it is present and is not `etag`, the
/// object changed since the client's first part, so it gets the whole object.
pub fn answer_range(
    range: Option<&str>,
    if_range: Option<&str>,
    etag: &str,
    size: u64,
) -> RangeAnswer {
    let Some(range) = range else {
        return RangeAnswer::Whole;
    };
    if if_range.is_some_and(|if_range| if_range.trim() != etag) {
        return RangeAnswer::Whole;
    }
    let Some(spec) = strip_prefix_ignore_case(range.trim(), "bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    match (number(first), number(last)) {
        // `bytes=-n`: the last n bytes.
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    first: size - suffix.min(size),
                    last: size - 1,
                }
            }
        }
        // `bytes=a-`: from a to the end.
        (Some(first), None) if last.is_empty() => from_to(first, u64::MAX, size),
        (Some(first), Some(last)) if last >= first => from_to(first, last, size),
        (Some(_), Some(_)) => RangeAnswer::Unsatisfiable,
        _ => RangeAnswer::Whole,
    }
}

fn from_to(first: u64, last: u64, size: u64) -> RangeAnswer {
    if first >= size {
        RangeAnswer::Unsatisfiable
    } else {
        RangeAnswer::Partial {
            first,
            last: last.min(size - 1),
        }
    }
}

/// A run of 1 to 20 ASCII digits that fits a u64.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > MAX_DIGITS || !text.bytes().all(|byte| byte.is_ascii_digit())
    {
        return None;
    }
    text.parse().ok()
}

fn strip_prefix_ignore_case<'text>(text: &'text str, prefix: &str) -> Option<&'text str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "\"abc\"";

    fn answer(range: &str, size: u64) -> RangeAnswer {
        answer_range(Some(range), None, ETAG, size)
    }

    fn partial(first: u64, last: u64) -> RangeAnswer {
        RangeAnswer::Partial { first, last }
    }

    #[test]
    fn single_ranges_of_every_form_are_served() {
        assert_eq!(answer("bytes=0-99", 1_000), partial(0, 99));
        assert_eq!(answer("bytes=500-", 1_000), partial(500, 999));
        assert_eq!(answer("bytes=-100", 1_000), partial(900, 999));
        assert_eq!(
            answer("bytes=-5000", 1_000),
            partial(0, 999),
            "a suffix longer than the object"
        );
        assert_eq!(
            answer("bytes=900-5000", 1_000),
            partial(900, 999),
            "an end past the object"
        );
        assert_eq!(answer("bytes=999-999", 1_000), partial(999, 999));
        assert_eq!(
            answer("BYTES=1-2", 1_000),
            partial(1, 2),
            "the unit in any case"
        );
    }

    #[test]
    fn well_formed_ranges_that_cannot_be_served_are_unsatisfiable() {
        assert_eq!(answer("bytes=-0", 1_000), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=5-1", 1_000), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=1000-", 1_000), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=1000-2000", 1_000), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=0-0", 0), RangeAnswer::Unsatisfiable);
        assert_eq!(answer("bytes=-1", 0), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn several_ranges_other_units_and_garbage_get_the_whole_object() {
        let thousand_ranges = format!(
            "bytes={}",
            (0..1_000)
                .map(|n| format!("{n}-{n}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        for range in [
            thousand_ranges.as_str(),
            "bytes=0-1,5-6",
            "items=0-5",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes = 1-2",
            "bytes=99999999999999999999999-",
            "",
        ] {
            assert_eq!(answer(range, 1_000), RangeAnswer::Whole, "{range:?}");
        }
        assert_eq!(answer_range(None, None, ETAG, 1_000), RangeAnswer::Whole);
    }

    #[test]
    fn if_range_with_another_tag_gets_the_whole_object() {
        assert_eq!(
            answer_range(Some("bytes=0-9"), Some(ETAG), ETAG, 100),
            partial(0, 9)
        );
        assert_eq!(
            answer_range(Some("bytes=0-9"), Some("\"old\""), ETAG, 100),
            RangeAnswer::Whole
        );
    }
}
