//! A byte-level guard for inbound XMPP streams, shared by the engine and cubeserver.
//!
//! The XML tree builders (minidom through xso and rxml) recurse once per nesting level and
//! hold a whole stanza in memory: a few thousand nested elements overflow the stack (a crash
//! no code can catch) and a 50 MB stanza costs hundreds of MB. [`XmlGuard`] sees every byte
//! *before* the parser does and counts the nesting depth and the size of the stanza being
//! read; the transport wrappers (`cubechat-core` and cubeserver) fail the read with
//! [`LimitError`] as soon as a limit is crossed, so the offending bytes never reach the tree
//! builder and the stream ends with an I/O error.
//!
//! It is a tokenizer, not a validator: tags, end tags, empty-element tags, quoted attribute
//! values, comments, CDATA sections, processing instructions and declarations are told
//! apart, and whatever else is wrong is left to the real parser, which sees the same bytes.
//! The stream element (`<stream:stream>`) is level 1, a stanza's element level 2.
//!
//! [`redact`] makes a logged stream element safe to print: the contents of SASL elements
//! (credentials) and of `<body>` elements (message text) are replaced by their length.

use std::fmt;

#[cfg(feature = "io")]
mod io;
#[cfg(feature = "io")]
pub use io::{Direction, GuardedIo, UnitLog};

/// Nesting allowed inside one stanza, the stanza's own element included (real stanzas use
/// fewer than 10 levels; the tree builders crash at about 600 in debug builds).
pub const MAX_DEPTH: usize = 64;

/// Bytes allowed in one stanza (or stream header), as received: a maximal message (64 KiB
/// body, custom parameters) stays below it even when every character is escaped.
pub const MAX_STANZA_BYTES: usize = 1024 * 1024;

/// How many stream restarts (a new `<stream:stream>` inside the open stream, after SASL)
/// one guard accepts; later ones count as ordinary nested elements.
const MAX_RESTARTS: u8 = 2;

/// The limits one guard enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nesting allowed inside one stanza (the stanza element is level 1).
    pub max_depth: usize,
    /// Bytes allowed in one stanza or stream header.
    pub max_stanza_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: MAX_DEPTH,
            max_stanza_bytes: MAX_STANZA_BYTES,
        }
    }
}

impl Limits {
    /// No limits: only boundaries are reported (used to log what we send).
    pub const UNLIMITED: Limits = Limits {
        max_depth: usize::MAX - 1,
        max_stanza_bytes: usize::MAX,
    };
}

/// Why a guarded stream was stopped. Its text never contains received data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitError {
    /// A stanza nests elements deeper than `limit`.
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// A stanza (or stream header) is longer than `limit` bytes.
    TooLarge {
        /// The size limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::TooDeep { limit } => {
                write!(f, "XML stanza nested deeper than {limit} elements")
            }
            LimitError::TooLarge { limit } => write!(f, "XML stanza larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for LimitError {}

impl From<LimitError> for std::io::Error {
    fn from(e: LimitError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// The [`LimitError`] inside an I/O error made by a guarded transport, if it is one.
pub fn limit_error(e: &(dyn std::error::Error + 'static)) -> Option<LimitError> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(l) = err.downcast_ref::<LimitError>() {
            return Some(*l);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(l) = io.get_ref().and_then(|i| i.downcast_ref::<LimitError>()) {
                return Some(*l);
            }
        }
        cur = err.source();
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Character data.
    Text,
    /// Just after `<`.
    Lt,
    /// The name of a start tag.
    StartName,
    /// Inside a start tag after its name; `quote` is the open quote, if any.
    Attrs { quote: Option<u8> },
    /// Inside an end tag.
    EndTag,
    /// Inside `<? … ?>`; `q` = the previous byte was `?`.
    Pi { q: bool },
    /// Just after `<!`.
    Bang,
    /// After `<!-`.
    BangDash,
    /// Inside `<!-- … -->`; `dashes` = trailing `-` seen.
    Comment { dashes: u8 },
    /// Inside `<![CDATA[ … ]]>`; `brackets` = trailing `]` seen.
    Cdata { brackets: u8 },
    /// Inside another `<! … >` declaration.
    Decl { quote: Option<u8> },
}

/// Counts nesting depth and stanza size over a byte stream (see the module docs).
#[derive(Debug, Clone)]
pub struct XmlGuard {
    limits: Limits,
    st: St,
    /// 0 = outside the stream, 1 = inside the stream element, 2 = inside a stanza, …
    depth: usize,
    /// Bytes of the current unit (stanza or stream header).
    unit: usize,
    /// The previous byte of a tag was `/` (outside quotes).
    slash: bool,
    /// The start tag's local name begins with `stream` and is exactly it so far.
    name: [u8; 16],
    name_len: usize,
    restarts: u8,
    failed: Option<LimitError>,
    accepted: usize,
}

impl XmlGuard {
    /// A guard at the start of a stream.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            st: St::Text,
            depth: 0,
            unit: 0,
            slash: false,
            name: [0; 16],
            name_len: 0,
            restarts: 0,
            failed: None,
            accepted: 0,
        }
    }

    /// After a [`Self::feed`] that failed: how many of its bytes came before the byte that
    /// crossed a limit (they are within the limits and may be handed to a parser).
    pub fn accepted(&self) -> usize {
        self.accepted
    }

    /// The limit that was crossed, if any (then every later feed fails with it).
    pub fn error(&self) -> Option<LimitError> {
        self.failed
    }

    /// The current nesting depth (1 = inside the stream element, between stanzas).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Scans `bytes`, calling `boundary(end)` after each complete top-level unit (stream
    /// header, stanza, stream footer), `end` being the index just past its last byte.
    /// After an error every later call fails the same way.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        mut boundary: impl FnMut(usize),
    ) -> Result<(), LimitError> {
        if let Some(e) = self.failed {
            self.accepted = 0;
            return Err(e);
        }
        for (i, &b) in bytes.iter().enumerate() {
            self.accepted = i;
            // Whitespace between stanzas (keep-alives) is not part of any unit.
            let counted = !(self.st == St::Text && self.depth <= 1 && b.is_ascii_whitespace());
            if counted {
                self.unit += 1;
                if self.unit > self.limits.max_stanza_bytes {
                    return Err(self.fail(LimitError::TooLarge {
                        limit: self.limits.max_stanza_bytes,
                    }));
                }
            }
            match self.st {
                St::Text => {
                    if b == b'<' {
                        self.st = St::Lt;
                    }
                }
                St::Lt => {
                    self.slash = false;
                    self.st = match b {
                        b'/' => St::EndTag,
                        b'?' => St::Pi { q: false },
                        b'!' => St::Bang,
                        _ => {
                            self.name_len = 0;
                            self.push_name(b);
                            St::StartName
                        }
                    };
                }
                St::StartName => match b {
                    b'>' => self.close_start(i, &mut boundary)?,
                    b'/' => {
                        self.slash = true;
                        self.st = St::Attrs { quote: None };
                    }
                    b if b.is_ascii_whitespace() => self.st = St::Attrs { quote: None },
                    b'\'' | b'"' => self.st = St::Attrs { quote: Some(b) },
                    _ => self.push_name(b),
                },
                St::Attrs { quote: Some(q) } => {
                    if b == q {
                        self.st = St::Attrs { quote: None };
                    }
                }
                St::Attrs { quote: None } => match b {
                    b'>' => self.close_start(i, &mut boundary)?,
                    b'\'' | b'"' => {
                        self.slash = false;
                        self.st = St::Attrs { quote: Some(b) };
                    }
                    b'/' => self.slash = true,
                    _ => self.slash = false,
                },
                St::EndTag => {
                    if b == b'>' {
                        self.st = St::Text;
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth <= 1 {
                            self.end_unit(i, &mut boundary);
                        }
                    }
                }
                St::Pi { q } => {
                    self.st = if q && b == b'>' {
                        St::Text
                    } else {
                        St::Pi { q: b == b'?' }
                    };
                }
                St::Bang => {
                    self.st = match b {
                        b'-' => St::BangDash,
                        b'[' => St::Cdata { brackets: 0 },
                        b'>' => St::Text,
                        b'\'' | b'"' => St::Decl { quote: Some(b) },
                        _ => St::Decl { quote: None },
                    };
                }
                St::BangDash => {
                    self.st = if b == b'-' {
                        St::Comment { dashes: 0 }
                    } else if b == b'>' {
                        St::Text
                    } else {
                        St::Decl { quote: None }
                    };
                }
                St::Comment { dashes } => {
                    self.st = match b {
                        b'>' if dashes >= 2 => St::Text,
                        b'-' => St::Comment {
                            dashes: dashes.saturating_add(1),
                        },
                        _ => St::Comment { dashes: 0 },
                    };
                }
                St::Cdata { brackets } => {
                    self.st = match b {
                        b'>' if brackets >= 2 => St::Text,
                        b']' => St::Cdata {
                            brackets: brackets.saturating_add(1),
                        },
                        _ => St::Cdata { brackets: 0 },
                    };
                }
                St::Decl { quote: Some(q) } => {
                    if b == q {
                        self.st = St::Decl { quote: None };
                    }
                }
                St::Decl { quote: None } => match b {
                    b'>' => self.st = St::Text,
                    b'\'' | b'"' => self.st = St::Decl { quote: Some(b) },
                    _ => {}
                },
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: LimitError) -> LimitError {
        self.failed = Some(e);
        e
    }

    fn push_name(&mut self, b: u8) {
        if b == b':' {
            // Only the local name matters.
            self.name_len = 0;
        } else if self.name_len < self.name.len() {
            self.name[self.name_len] = b;
            self.name_len += 1;
        } else {
            self.name_len = self.name.len() + 1;
        }
    }

    fn is_stream_tag(&self) -> bool {
        self.name_len <= self.name.len() && &self.name[..self.name_len] == b"stream"
    }

    /// `>` of a start tag at index `i`.
    fn close_start(
        &mut self,
        i: usize,
        boundary: &mut impl FnMut(usize),
    ) -> Result<(), LimitError> {
        self.st = St::Text;
        if self.slash {
            // Empty element: no depth change.
            if self.depth <= 1 {
                self.end_unit(i, boundary);
            }
            return Ok(());
        }
        if self.depth == 0 {
            self.depth = 1;
            self.end_unit(i, boundary);
            return Ok(());
        }
        if self.depth == 1 && self.restarts < MAX_RESTARTS && self.is_stream_tag() {
            // A restarted stream (after SASL): the parser starts a new document.
            self.restarts += 1;
            self.end_unit(i, boundary);
            return Ok(());
        }
        self.depth += 1;
        if self.depth - 1 > self.limits.max_depth {
            return Err(self.fail(LimitError::TooDeep {
                limit: self.limits.max_depth,
            }));
        }
        Ok(())
    }

    fn end_unit(&mut self, i: usize, boundary: &mut impl FnMut(usize)) {
        self.unit = 0;
        boundary(i + 1);
    }
}

/// Local names of the SASL elements whose contents are credentials or derived from them.
const SASL: &[&[u8]] = &[b"auth", b"response", b"challenge", b"success"];

/// `unit` (one logged stream element) as text fit for a log: the contents of a top-level
/// SASL element (`auth`, `response`, `challenge`, `success`) and of every `<body>` element
/// are replaced by `[N bytes redacted]`. Never fails; invalid UTF-8 is replaced.
pub fn redact(unit: &[u8]) -> String {
    let start = unit
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(unit.len());
    let unit = &unit[start..];
    if let Some((name, content_at)) = open_tag(unit, 0) {
        if SASL.contains(&local(name)) {
            let Some(content_at) = content_at else {
                return String::from_utf8_lossy(unit).into_owned();
            };
            let end = rfind(unit, b"</").filter(|e| *e >= content_at);
            let end = end.unwrap_or(unit.len());
            let mut out = String::from_utf8_lossy(&unit[..content_at]).into_owned();
            if end > content_at {
                out.push_str(&format!("[{} bytes redacted]", end - content_at));
            }
            out.push_str(&String::from_utf8_lossy(&unit[end..]));
            return out;
        }
    }
    // Every <body>…</body> (any prefix) keeps its tags and loses its text.
    let mut out = Vec::with_capacity(unit.len());
    let mut i = 0;
    while i < unit.len() {
        if unit[i] == b'<' {
            if let Some((name, Some(content_at))) = open_tag(unit, i) {
                if local(name) == b"body" {
                    let end = find(&unit[content_at..], b"</")
                        .map(|e| content_at + e)
                        .unwrap_or(unit.len());
                    out.extend_from_slice(&unit[i..content_at]);
                    if end > content_at {
                        out.extend_from_slice(
                            format!("[{} bytes redacted]", end - content_at).as_bytes(),
                        );
                    }
                    i = end;
                    continue;
                }
            }
        }
        out.push(unit[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// If `s[at..]` starts with a start tag: its name and the index just past its `>` (`None`
/// for an empty-element tag or an unfinished one).
fn open_tag(s: &[u8], at: usize) -> Option<(&[u8], Option<usize>)> {
    let rest = s.get(at..)?;
    if rest.first() != Some(&b'<') {
        return None;
    }
    let name_end = rest
        .iter()
        .skip(1)
        .position(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
        .map(|p| p + 1)
        .unwrap_or(rest.len());
    let name = &rest[1..name_end];
    if name.is_empty() || matches!(name[0], b'/' | b'?' | b'!') {
        return None;
    }
    let mut quote = None;
    let mut prev = 0u8;
    for (j, &b) in rest.iter().enumerate().skip(name_end) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'>' => {
                return Some((name, (prev != b'/').then_some(at + j + 1)));
            }
            None => {}
        }
        prev = b;
    }
    Some((name, None))
}

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b':') {
        Some(p) => &name[p + 1..],
        None => name,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

    fn units(g: &mut XmlGuard, s: &str) -> Result<Vec<String>, LimitError> {
        let mut ends = vec![];
        g.feed(s.as_bytes(), |e| ends.push(e))?;
        let mut prev = 0;
        Ok(ends
            .into_iter()
            .map(|e| {
                let u = s[prev..e].trim().to_owned();
                prev = e;
                u
            })
            .collect())
    }

    fn nested(n: usize) -> String {
        format!(
            "<message>{}{}</message>",
            "<a>".repeat(n - 1),
            "</a>".repeat(n - 1)
        )
    }

    #[test]
    fn splits_a_stream_into_units() {
        let mut g = XmlGuard::new(Limits::default());
        let s = format!(
            "{HEADER}<stream:features><mechanisms><mechanism>PLAIN</mechanism></mechanisms></stream:features> \n<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{HEADER}<iq type='result' id='a&gt;'><bind><jid>x@y/z</jid></bind></iq><message a='/>' b=\"<\"><body><![CDATA[<x><y>]]></body><!-- <z> --></message></stream:stream>"
        );
        let u = units(&mut g, &s).unwrap();
        assert_eq!(u.len(), 7, "{u:#?}");
        assert!(u[0].ends_with("version='1.0'>"));
        assert!(u[2].starts_with("<success"));
        assert!(u[4].starts_with("<iq") && u[4].ends_with("</iq>"));
        assert!(u[5].starts_with("<message") && u[5].ends_with("</message>"));
        assert_eq!(u[6], "</stream:stream>");
        assert_eq!(g.depth(), 0);
    }

    #[test]
    fn depth_limit_is_exact_and_sticky() {
        let mut g = XmlGuard::new(Limits::default());
        let ok = format!("{HEADER}{}", nested(MAX_DEPTH));
        assert_eq!(units(&mut g, &ok).unwrap().len(), 2);
        let bad = nested(MAX_DEPTH + 1);
        assert_eq!(
            units(&mut g, &bad),
            Err(LimitError::TooDeep { limit: MAX_DEPTH })
        );
        assert!(g.feed(b" ", |_| {}).is_err());
    }

    #[test]
    fn depth_counts_across_chunks_and_empty_elements() {
        let mut g = XmlGuard::new(Limits {
            max_depth: 3,
            max_stanza_bytes: 1000,
        });
        let s = format!("{HEADER}<a><b/><b><c/></b></a><a><b><c><d>");
        let mut err = None;
        for chunk in s.as_bytes().chunks(3) {
            if let Err(e) = g.feed(chunk, |_| {}) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(LimitError::TooDeep { limit: 3 }));
    }

    #[test]
    fn restarts_are_bounded() {
        // A peer cannot hide nesting behind fake stream headers.
        let mut g = XmlGuard::new(Limits {
            max_depth: 4,
            max_stanza_bytes: 100_000,
        });
        let s = format!("{HEADER}{}", "<stream:stream>".repeat(10));
        assert_eq!(units(&mut g, &s), Err(LimitError::TooDeep { limit: 4 }));
    }

    #[test]
    fn size_limit_per_stanza_not_per_stream() {
        let mut g = XmlGuard::new(Limits {
            max_depth: 10,
            max_stanza_bytes: 200,
        });
        units(&mut g, HEADER).unwrap();
        let msg = format!("<message><body>{}</body></message>", "x".repeat(150));
        for _ in 0..100 {
            units(&mut g, &msg).unwrap();
            units(&mut g, &" ".repeat(1000)).unwrap();
        }
        let big = format!("<message><body>{}</body></message>", "x".repeat(190));
        assert_eq!(
            units(&mut g, &big),
            Err(LimitError::TooLarge { limit: 200 })
        );
    }

    #[test]
    fn limit_error_is_found_inside_io_errors() {
        let io: std::io::Error = LimitError::TooDeep { limit: 3 }.into();
        assert_eq!(limit_error(&io), Some(LimitError::TooDeep { limit: 3 }));
        let other = std::io::Error::other("x");
        assert_eq!(limit_error(&other), None);
        assert!(!io.to_string().contains('<'));
    }

    #[test]
    fn redacts_sasl_and_bodies() {
        let auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHVzZXIAc2VjcmV0</auth>";
        let r = redact(auth);
        assert!(!r.contains("AHVzZXIAc2VjcmV0"), "{r}");
        assert!(r.contains("mechanism='PLAIN'") && r.contains("[16 bytes redacted]"));
        for el in ["response", "challenge", "success"] {
            let s = format!("  <sasl:{el} xmlns:sasl='x'>c2VjcmV0</sasl:{el}>");
            assert!(!redact(s.as_bytes()).contains("c2VjcmV0"));
        }
        let unfinished = redact(b"<auth mechanism='PLAIN'>AHVzZX");
        assert!(!unfinished.contains("AHVzZX"), "{unfinished}");
        assert_eq!(redact(b"<success/>"), "<success/>");
        let msg = b"<message to='a'><body>hello</body><x><body xml:lang='en'>bye &amp; all</body></x><body/></message>";
        let r = redact(msg);
        assert!(!r.contains("hello") && !r.contains("bye"), "{r}");
        assert!(r.contains("<message to='a'><body>[5 bytes redacted]</body>"));
        assert!(r.ends_with("<body/></message>"));
        let iq = b"<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>";
        assert_eq!(redact(iq), String::from_utf8_lossy(iq));
    }
}
