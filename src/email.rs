//! Email addresses: parsed strictly (one mailbox, one form) before anything reaches Attio, and
//! redacted wherever they could reach a log.

use std::fmt;

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, Script};
use icu_properties::script::ScriptWithExtensions;
use icu_properties::{CodePointMapData, CodePointSetData};
use thiserror::Error;

/// An email address as one mailbox is written: a dot-atom local part (RFC 5322; RFC 6531
/// letters allowed) and a host name, the domain in its ASCII (IDNA) form, so `bücher.example`
/// and `xn--bcher-kva.example` are the same address. `Debug` and `Display` redact it, so an
/// address cannot reach the logs by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

/// Why a string is not an email address. Never holds the address itself.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
#[error("not a valid email address: {0}")]
pub struct InvalidEmail(&'static str);

/// RFC 5321's limits: 64 octets before the @, 254 in all (a path of 256 less the brackets).
const MAX_LOCAL_PART: usize = 64;
const MAX_ADDRESS: usize = 254;

impl EmailAddress {
    /// Accepts `local@domain` as one mailbox is written and nothing else: no display name,
    /// angle brackets or scheme, no quoted local part, no whitespace, control or invisible
    /// characters, no part mixing writing systems (a look-alike), and a domain that is a host
    /// name of at least two labels. Surrounding whitespace is trimmed.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(InvalidEmail("it is empty"));
        }
        if s.len() > MAX_ADDRESS {
            return Err(InvalidEmail("it is longer than 254 characters"));
        }
        if s.contains(['<', '>']) {
            return Err(InvalidEmail(
                "it has a display name or angle brackets; send the bare address",
            ));
        }
        if let Some((scheme, _)) = s.split_once(':')
            && scheme.eq_ignore_ascii_case("mailto")
        {
            return Err(InvalidEmail(
                "it has a mailto: scheme; send the bare address",
            ));
        }
        if s.chars().any(is_unseen) {
            return Err(InvalidEmail(
                "it contains whitespace, control or invisible characters",
            ));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(InvalidEmail("it has no @"));
        };
        check_local_part(local)?;
        let domain = ascii_domain(domain)?;
        let address = format!("{local}@{domain}");
        // The ASCII form of a Unicode domain is longer than what was sent.
        if address.len() > MAX_ADDRESS {
            return Err(InvalidEmail("it is longer than 254 characters"));
        }
        Ok(Self(address))
    }

    /// The address itself, for sending to Attio. Never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form safe for logs: first character of the local part and the domain, `j***@example.com`.
    pub fn redacted(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", &self.0));
        format!("{}@{domain}", mask_local_part(local))
    }
}

/// Characters no address shows: whitespace, controls, format characters (zero-width spaces
/// and joiners, bidi controls, soft hyphens, tags), other default-ignorable ones (variation
/// selectors, Hangul fillers), private-use and unassigned code points. The Unicode data is
/// ICU4X's, which IDNA already links.
fn is_unseen(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_whitespace() || c.is_ascii_control();
    }
    use GeneralCategory as G;
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        G::Control
            | G::Format
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::PrivateUse
            | G::Surrogate
            | G::Unassigned
    ) || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// A dot-atom: atoms of RFC 5322 `atext` (plus non-ASCII letters, RFC 6531) joined by single
/// dots. Quoted local parts (`"a b"@x`) are valid mail syntax but no provider issues them.
fn check_local_part(local: &str) -> Result<(), InvalidEmail> {
    if local.is_empty() || local.len() > MAX_LOCAL_PART {
        return Err(InvalidEmail(
            "the part before @ is empty or longer than 64 characters",
        ));
    }
    if local.starts_with('"') {
        return Err(InvalidEmail("quoted local parts are not accepted"));
    }
    let atext =
        |c: char| !c.is_ascii() || c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    {
        return Err(InvalidEmail(
            "the part before @ has characters or dots an address cannot have",
        ));
    }
    single_writing_system(local)
}

/// The domain as Attio should store it: IDNA (UTS 46) to ASCII, lower case, each label a
/// letter-digit-hyphen host name label, at least two labels, the last not all digits.
fn ascii_domain(domain: &str) -> Result<String, InvalidEmail> {
    const NOT_A_HOST: InvalidEmail = InvalidEmail("the domain is not a valid host name");
    if domain.is_empty() || domain.starts_with('[') {
        return Err(NOT_A_HOST);
    }
    let ascii = idna::domain_to_ascii_strict(domain).map_err(|_| NOT_A_HOST)?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let host_label = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let top = labels.last().copied().unwrap_or("");
    if labels.len() < 2 || !labels.iter().all(host_label) || top.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(NOT_A_HOST);
    }
    // Look-alikes hide in the Unicode form (also of labels sent as xn--…); a domain with no
    // xn-- label is its own Unicode form, and ASCII.
    if !labels.iter().any(|l| l.starts_with("xn--")) {
        return Ok(ascii);
    }
    let (unicode, decoded) = idna::domain_to_unicode(&ascii);
    decoded.map_err(|_| NOT_A_HOST)?;
    for label in unicode.split('.') {
        single_writing_system(label)?;
    }
    Ok(ascii)
}

/// One part of an address (the local part, a domain label) in one writing system, as UTS 39's
/// "highly restrictive" level allows (one script, or Latin with Han and Japanese or Korean
/// scripts): `pаypal` with a Cyrillic `а` is refused. Digits and punctuation belong to every
/// script.
fn single_writing_system(part: &str) -> Result<(), InvalidEmail> {
    if part.is_ascii() || fits_one_system(part) || fits_han_with_latin(part) {
        Ok(())
    } else {
        Err(InvalidEmail(
            "it mixes writing systems in one part, as look-alike addresses do",
        ))
    }
}

/// A script, or one of the writing systems UTS 39 §5.1 augments Han scripts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Script(Script),
    Japanese,
    Korean,
    HanWithBopomofo,
}

/// The writing systems `c` can be written in (its script extensions, augmented); `None` when
/// it fits any (Common and Inherited characters: digits, punctuation, combining marks).
fn systems_of(c: char) -> Option<Vec<System>> {
    let mut systems = Vec::new();
    for script in ScriptWithExtensions::new()
        .get_script_extensions_val(c)
        .iter()
    {
        if script == Script::Common || script == Script::Inherited {
            return None;
        }
        systems.push(System::Script(script));
        match script {
            Script::Han => {
                systems.extend([System::Japanese, System::Korean, System::HanWithBopomofo])
            }
            Script::Hiragana | Script::Katakana => systems.push(System::Japanese),
            Script::Hangul => systems.push(System::Korean),
            Script::Bopomofo => systems.push(System::HanWithBopomofo),
            _ => {}
        }
    }
    Some(systems)
}

/// The writing systems every character of `part` fits (its resolved script set), leaving out
/// Latin letters when `without_latin`; `None` when every character fits any.
fn resolved(part: &str, without_latin: bool) -> Option<Vec<System>> {
    let mut common: Option<Vec<System>> = None;
    for c in part.chars() {
        let Some(systems) = systems_of(c) else {
            continue;
        };
        if without_latin && systems.contains(&System::Script(Script::Latin)) {
            continue;
        }
        common = Some(match common {
            None => systems,
            Some(mut held) => {
                held.retain(|s| systems.contains(s));
                held
            }
        });
    }
    common
}

fn fits_one_system(part: &str) -> bool {
    resolved(part, false).is_none_or(|systems| !systems.is_empty())
}

/// Latin mixed with Han and Japanese or Korean scripts (UTS 39's "highly restrictive").
fn fits_han_with_latin(part: &str) -> bool {
    resolved(part, true).is_some_and(|systems| {
        systems.iter().any(|s| {
            matches!(
                s,
                System::Japanese | System::Korean | System::HanWithBopomofo
            )
        })
    })
}

/// Written as the bare address (a queue message carries it).
impl serde::Serialize for EmailAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Read through [`EmailAddress::parse`], so an address from outside is checked like any other;
/// the error never quotes it.
impl<'de> serde::Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.redacted())
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `j***` for `jane`; a one-character local part is hidden whole, since its first character is all of it.
fn mask_local_part(local: &str) -> String {
    let mut chars = local.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(_)) => format!("{first}***"),
        _ => "***".to_owned(),
    }
}

/// Replaces every email-looking word in `text` (e.g. an Attio error message) with its redacted
/// form, so the text can be logged.
pub fn redact_emails(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let Some(at) = word.rfind('@') else {
                return word.to_owned();
            };
            // Keep opening quotes and brackets; hide the local part but its first character.
            let (prefix, domain) = word.split_at(at);
            let local_start = prefix
                .find(|c: char| !matches!(c, '"' | '\'' | '(' | '<' | '['))
                .unwrap_or(prefix.len());
            let (opening, local) = prefix.split_at(local_start);
            match (opening.is_empty(), local.is_empty()) {
                (true, true) => word.to_owned(),
                // Nothing but quotes before the @: they may be the local part; hide them too.
                (false, true) => format!("{}{domain}", mask_local_part(opening)),
                _ => format!("{opening}{}{domain}", mask_local_part(local)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_emails_hides_addresses_inside_messages() {
        let msg = "Invalid value \"jane.doe@example.com\" for primary_email_address, see x@y.";
        let out = redact_emails(msg);
        assert!(!out.contains("jane.doe"), "{out}");
        assert!(out.contains("j***@example.com"), "{out}");
        assert!(out.starts_with("Invalid value"));
    }

    #[test]
    fn redact_emails_hides_local_parts_that_start_with_punctuation() {
        // Found by fuzz/fuzz_targets/email_address.rs.
        let out = redact_emails("value \"]@b.co\" rejected");
        assert!(!out.contains("]@b.co"), "{out}");
        assert_eq!(
            redact_emails("no address here, @handle"),
            "no address here, @handle"
        );
        let out = redact_emails("value \"\"@d.example\" rejected");
        assert!(!out.contains("\"@d.example"), "{out}");
    }

    #[test]
    fn accepts_ordinary_addresses_and_trims_them() {
        let e = EmailAddress::parse("  jane.doe+crm@example.co.uk ").unwrap();
        assert_eq!(e.as_str(), "jane.doe+crm@example.co.uk");
        for ok in [
            "o'brien@example.com",
            "first_last-1@sub.example.io",
            "x@a1.example",
        ] {
            assert_eq!(EmailAddress::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn one_mailbox_is_one_address_whatever_form_its_domain_is_sent_in() {
        let unicode = EmailAddress::parse("ada@bücher.example").unwrap();
        let punycode = EmailAddress::parse("ada@xn--bcher-kva.example").unwrap();
        let upper = EmailAddress::parse("ada@BÜCHER.Example").unwrap();
        assert_eq!(unicode.as_str(), "ada@xn--bcher-kva.example");
        assert_eq!(unicode, punycode);
        assert_eq!(unicode, upper);
        // Letters of one script beyond Latin are addresses too.
        assert!(EmailAddress::parse("иван@пример.рф").is_ok());
        assert!(EmailAddress::parse("ada@東京.jp").is_ok());
        assert!(
            EmailAddress::parse("ada@abc東京.jp").is_ok(),
            "Latin with Han"
        );
        assert!(
            EmailAddress::parse("ada@ひらがなカタカナ漢字.jp").is_ok(),
            "Japanese"
        );
        assert!(EmailAddress::parse("müller.ø@example.com").is_ok());
    }

    #[test]
    fn rejects_addresses_that_can_never_be_valid() {
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@localhost",
            "jane@exa mple.com",
            "jane@.example.com",
            "jane@example..com",
            "a@b@example.com",
            "jane@-example.com",
            "jane@exa_mple.com",
            "jane@1.2.3.4",
            "jane@[192.0.2.1]",
            ".jane@example.com",
            "ja..ne@example.com",
            "jane.@example.com",
            "ja(ne)@example.com",
            "\"jane doe\"@example.com",
            "jane@xn--zz.example",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
        // Short enough as sent, too long once the domain is in its ASCII (punycode) form.
        // Found by fuzz/fuzz_targets/email_address.rs.
        let unicode_domain = format!(
            "{}@{}.example",
            "a".repeat(40),
            vec!["bücher"; 16].join(".")
        );
        assert!(unicode_domain.len() <= 254);
        assert!(EmailAddress::parse(&unicode_domain).is_err());
    }

    #[test]
    fn rejects_display_names_schemes_invisible_characters_and_look_alikes() {
        let reason = |raw: &str| EmailAddress::parse(raw).unwrap_err().to_string();
        for wrapped in ["<ada@example.com>", "Ada Lovelace <ada@example.com>"] {
            assert!(reason(wrapped).contains("angle brackets"), "{wrapped:?}");
        }
        for scheme in ["mailto:ada@example.com", "MAILTO:ada@example.com"] {
            assert!(reason(scheme).contains("mailto"), "{scheme:?}");
        }
        for unseen in [
            "ada\u{200B}@example.com",  // zero-width space
            "ada@exam\u{200D}ple.com",  // zero-width joiner
            "ada@exam\u{00AD}ple.com",  // soft hyphen (IDNA would drop it silently)
            "\u{202E}moc.elpmaxe@ada",  // right-to-left override
            "ada\u{FEFF}@example.com",  // byte order mark
            "ada\u{0007}@example.com",  // a control character
            "ada\u{E0041}@example.com", // a tag character
            "ada@example.com\u{2060}",  // word joiner
            "ada\u{00A0}x@example.com", // no-break space
            "ada\u{FE0F}@example.com",  // variation selector
            "ada\u{3164}@example.com",  // Hangul filler
            "ada\u{E000}@example.com",  // private use
        ] {
            assert!(reason(unseen).contains("invisible"), "{unseen:?}");
        }
        for look_alike in [
            "\u{0430}da@example.com", // Cyrillic а, Latin da
            "ada@p\u{0430}ypal.com",  // Cyrillic а in a Latin label
            "ada@xn--pypal-4ve.com",  // the same label sent as punycode
            "ad\u{03B1}@example.com", // Greek alpha
        ] {
            assert!(
                reason(look_alike).contains("writing systems"),
                "{look_alike:?}"
            );
        }
    }

    #[test]
    fn debug_and_display_never_show_the_full_address() {
        let e = EmailAddress::parse("jane.doe@example.com").unwrap();
        assert_eq!(format!("{e}"), "j***@example.com");
        assert!(!format!("{e:?}").contains("jane.doe"));
    }
}
