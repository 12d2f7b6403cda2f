//! Reading SMILES into atoms and bonds, as written: no hydrogens inferred,
//! no valences checked. [`crate::Molecule::from_smiles`] does the rest.

use std::fmt;

use crate::element;

/// Longest SMILES accepted, in bytes: far above any real molecule (the
/// largest in the usual benchmark sets is under 1000), low enough that a
/// garbage line cannot make the later steps slow.
pub const MAX_SMILES_LEN: usize = 100_000;

/// A bond as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrittenBond {
    /// Nothing, `/` or `\`: single, or aromatic between two aromatic atoms.
    Implicit,
    /// `-`
    Single,
    /// `=`
    Double,
    /// `#`
    Triple,
    /// `$`
    Quadruple,
    /// `:`
    Aromatic,
}

/// An atom as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenAtom {
    /// Atomic number; 0 for `*`.
    pub atomic_number: u8,
    /// Written lowercase.
    pub aromatic: bool,
    /// Written in brackets (then `hydrogens` is exact).
    pub bracket: bool,
    /// Mass number, if written.
    pub isotope: Option<u16>,
    /// Formal charge.
    pub charge: i8,
    /// Hydrogens written in the bracket.
    pub hydrogens: u8,
    /// 0-based byte offset of the atom in the SMILES.
    pub position: usize,
}

/// The graph as written.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WrittenMolecule {
    /// Atoms in order of appearance.
    pub atoms: Vec<WrittenAtom>,
    /// Bonds as `(atom, atom, kind)`, in order of completion.
    pub bonds: Vec<(usize, usize, WrittenBond)>,
}

/// Why a SMILES could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmilesError {
    /// 1-based column of the problem.
    pub column: usize,
    /// What is wrong.
    pub kind: SmilesErrorKind,
}

/// The ways a SMILES can be malformed or chemically impossible.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmilesErrorKind {
    /// Nothing to read.
    Empty,
    /// Longer than [`MAX_SMILES_LEN`].
    TooLong(usize),
    /// A character that has no meaning here.
    Unexpected(char),
    /// An element symbol that does not exist (or cannot be aromatic).
    UnknownElement(String),
    /// A `[` without its `]`.
    UnclosedBracket,
    /// A `(` without its `)`.
    UnclosedBranch,
    /// A `)` without its `(`.
    UnopenedBranch,
    /// A ring bond opened but never closed.
    UnclosedRing(u32),
    /// A ring bond from an atom to itself, or doubling an existing bond.
    BadRingBond(u32),
    /// The two ends of a ring bond ask for different bond types.
    ConflictingRingBonds(u32),
    /// A bond symbol with no atom after it.
    DanglingBond,
    /// A bond, branch or ring label before any atom.
    NoAtomBefore(char),
    /// A number too large to be meant.
    NumberTooLarge,
    /// The aromatic part has no Kekulé structure.
    CannotKekulize {
        /// 1-based number of an atom left without its double bond.
        atom: usize,
    },
    /// The atom's valence exceeds every allowed one.
    Valence {
        /// The element symbol.
        symbol: String,
        /// 1-based atom number.
        atom: usize,
        /// Its explicit valence.
        valence: u32,
        /// The largest valence RDKit allows it.
        allowed: u32,
    },
}

impl fmt::Display for SmilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let column = self.column;
        match &self.kind {
            SmilesErrorKind::Empty => write!(f, "empty SMILES"),
            SmilesErrorKind::TooLong(len) => {
                write!(f, "SMILES of {len} characters is longer than the {MAX_SMILES_LEN} accepted")
            }
            SmilesErrorKind::Unexpected(c) => write!(f, "unexpected '{c}' at column {column}"),
            SmilesErrorKind::UnknownElement(symbol) => {
                write!(f, "unknown element '{symbol}' at column {column}")
            }
            SmilesErrorKind::UnclosedBracket => {
                write!(f, "the bracket atom opened at column {column} is never closed")
            }
            SmilesErrorKind::UnclosedBranch => {
                write!(f, "the branch opened at column {column} is never closed")
            }
            SmilesErrorKind::UnopenedBranch => write!(f, "')' at column {column} closes no branch"),
            SmilesErrorKind::UnclosedRing(label) => {
                write!(f, "ring bond {label} opened at column {column} is never closed")
            }
            SmilesErrorKind::BadRingBond(label) => {
                write!(
                    f,
                    "ring bond {label} at column {column} joins atoms that are already bonded"
                )
            }
            SmilesErrorKind::ConflictingRingBonds(label) => {
                write!(
                    f,
                    "the two ends of ring bond {label} (closed at column {column}) give different bond types"
                )
            }
            SmilesErrorKind::DanglingBond => {
                write!(f, "the bond at column {column} leads to no atom")
            }
            SmilesErrorKind::NoAtomBefore(c) => {
                write!(f, "'{c}' at column {column} has no atom before it")
            }
            SmilesErrorKind::NumberTooLarge => write!(f, "number too large at column {column}"),
            SmilesErrorKind::CannotKekulize { atom } => write!(
                f,
                "the aromatic system around atom {atom} (column {column}) has no Kekulé structure: \
                 an aromatic atom is missing a hydrogen or a charge"
            ),
            SmilesErrorKind::Valence { symbol, atom, valence, allowed } => {
                write!(
                    f,
                    "{symbol} at atom {atom} (column {column}) has valence {valence}, allowed {allowed}"
                )
            }
        }
    }
}

impl std::error::Error for SmilesError {}

fn error<T>(position: usize, kind: SmilesErrorKind) -> Result<T, SmilesError> {
    Err(SmilesError { column: position + 1, kind })
}

/// Reads `smiles` as written. Leading blanks are skipped and reading stops
/// at the first blank after the SMILES, as RDKit does.
///
/// # Errors
///
/// Fails with the column and the problem on malformed input.
pub fn parse(smiles: &str) -> Result<WrittenMolecule, SmilesError> {
    let start = smiles.len() - smiles.trim_start().len();
    let text = smiles[start..].split(char::is_whitespace).next().unwrap_or("");
    if text.is_empty() {
        return error(start, SmilesErrorKind::Empty);
    }
    if text.len() > MAX_SMILES_LEN {
        return error(start, SmilesErrorKind::TooLong(text.len()));
    }
    Parser {
        bytes: text.as_bytes(),
        offset: start,
        at: 0,
        molecule: WrittenMolecule::default(),
        bonded: Vec::new(),
    }
    .run()
}

struct Parser<'a> {
    bytes: &'a [u8],
    /// Bytes skipped before `bytes`, so positions refer to the input.
    offset: usize,
    at: usize,
    molecule: WrittenMolecule,
    /// For each atom, the atoms it is bonded to, to refuse a ring bond that
    /// doubles an existing bond without scanning every bond.
    bonded: Vec<Vec<usize>>,
}

struct OpenRing {
    atom: usize,
    bond: Option<(WrittenBond, usize)>,
    position: usize,
}

impl Parser<'_> {
    fn position(&self) -> usize {
        self.offset + self.at
    }

    fn add_bond(&mut self, a: usize, b: usize, bond: WrittenBond) {
        self.molecule.bonds.push((a, b, bond));
        self.bonded[a].push(b);
        self.bonded[b].push(a);
    }

    fn run(mut self) -> Result<WrittenMolecule, SmilesError> {
        let mut previous: Option<usize> = None;
        let mut pending_bond: Option<(WrittenBond, usize)> = None;
        let mut branches: Vec<(Option<usize>, usize)> = Vec::new();
        let mut rings: std::collections::BTreeMap<u32, OpenRing> =
            std::collections::BTreeMap::new();

        while self.at < self.bytes.len() {
            let c = self.bytes[self.at] as char;
            let here = self.position();
            match c {
                '(' => {
                    if previous.is_none() {
                        return error(here, SmilesErrorKind::NoAtomBefore(c));
                    }
                    branches.push((previous, here));
                    self.at += 1;
                }
                ')' => {
                    if pending_bond.is_some() {
                        return error(
                            pending_bond.map_or(here, |(_, p)| p),
                            SmilesErrorKind::DanglingBond,
                        );
                    }
                    let Some((atom, _)) = branches.pop() else {
                        return error(here, SmilesErrorKind::UnopenedBranch);
                    };
                    previous = atom;
                    self.at += 1;
                }
                '.' => {
                    if pending_bond.is_some() {
                        return error(
                            pending_bond.map_or(here, |(_, p)| p),
                            SmilesErrorKind::DanglingBond,
                        );
                    }
                    previous = None;
                    self.at += 1;
                }
                '-' | '=' | '#' | '$' | ':' | '/' | '\\' => {
                    if previous.is_none() {
                        return error(here, SmilesErrorKind::NoAtomBefore(c));
                    }
                    if pending_bond.is_some() {
                        return error(here, SmilesErrorKind::Unexpected(c));
                    }
                    let bond = match c {
                        '-' => WrittenBond::Single,
                        '=' => WrittenBond::Double,
                        '#' => WrittenBond::Triple,
                        '$' => WrittenBond::Quadruple,
                        ':' => WrittenBond::Aromatic,
                        _ => WrittenBond::Implicit,
                    };
                    pending_bond = Some((bond, here));
                    self.at += 1;
                }
                '0'..='9' | '%' => {
                    let Some(atom) = previous else {
                        return error(here, SmilesErrorKind::NoAtomBefore(c));
                    };
                    let label = self.ring_label()?;
                    match rings.remove(&label) {
                        None => {
                            rings.insert(
                                label,
                                OpenRing { atom, bond: pending_bond.take(), position: here },
                            );
                        }
                        Some(open) => {
                            let bond =
                                match (open.bond, pending_bond.take()) {
                                    (None, None) => WrittenBond::Implicit,
                                    (Some((b, _)), None) | (None, Some((b, _))) => b,
                                    (Some((a, _)), Some((b, _))) if a == b => a,
                                    (Some((a, _)), Some((b, _)))
                                        if a == WrittenBond::Implicit
                                            || b == WrittenBond::Implicit =>
                                    {
                                        if a == WrittenBond::Implicit { b } else { a }
                                    }
                                    _ => {
                                        return error(
                                            here,
                                            SmilesErrorKind::ConflictingRingBonds(label),
                                        );
                                    }
                                };
                            let already = self.bonded[atom].contains(&open.atom);
                            if open.atom == atom || already {
                                return error(here, SmilesErrorKind::BadRingBond(label));
                            }
                            self.add_bond(open.atom, atom, bond);
                        }
                    }
                }
                _ => {
                    let atom = self.atom()?;
                    let idx = self.molecule.atoms.len();
                    self.molecule.atoms.push(atom);
                    self.bonded.push(Vec::new());
                    if let Some(prev) = previous {
                        let bond = pending_bond.take().map_or(WrittenBond::Implicit, |(b, _)| b);
                        self.add_bond(prev, idx, bond);
                    }
                    previous = Some(idx);
                }
            }
        }
        if let Some((_, position)) = pending_bond {
            return error(position, SmilesErrorKind::DanglingBond);
        }
        if let Some(&(_, position)) = branches.last() {
            return error(position, SmilesErrorKind::UnclosedBranch);
        }
        if let Some((&label, open)) = rings.iter().next() {
            return error(open.position, SmilesErrorKind::UnclosedRing(label));
        }
        Ok(self.molecule)
    }

    /// A ring label: one digit, or `%` and two digits, or `%(` digits `)`.
    fn ring_label(&mut self) -> Result<u32, SmilesError> {
        let here = self.position();
        let c = self.bytes[self.at];
        if c != b'%' {
            self.at += 1;
            return Ok(u32::from(c - b'0'));
        }
        self.at += 1;
        if self.bytes.get(self.at) == Some(&b'(') {
            self.at += 1;
            let digits = self.digits();
            if digits.is_empty() || self.bytes.get(self.at) != Some(&b')') {
                return error(here, SmilesErrorKind::Unexpected('%'));
            }
            self.at += 1;
            return digits.parse().or_else(|_| error(here, SmilesErrorKind::NumberTooLarge));
        }
        let two = self.bytes.get(self.at..self.at + 2).filter(|d| d.iter().all(u8::is_ascii_digit));
        let Some(two) = two else { return error(here, SmilesErrorKind::Unexpected('%')) };
        self.at += 2;
        Ok(u32::from(two[0] - b'0') * 10 + u32::from(two[1] - b'0'))
    }

    fn digits(&mut self) -> String {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()
    }

    fn atom(&mut self) -> Result<WrittenAtom, SmilesError> {
        let here = self.position();
        let c = self.bytes[self.at];
        if c == b'[' {
            return self.bracket_atom();
        }
        let rest = &self.bytes[self.at..];
        let (symbol, len, aromatic) = match rest {
            [b'C', b'l', ..] => ("Cl", 2, false),
            [b'B', b'r', ..] => ("Br", 2, false),
            [b'B' | b'C' | b'N' | b'O' | b'P' | b'S' | b'F' | b'I', ..] => {
                (organic_symbol(c), 1, false)
            }
            [b'b' | b'c' | b'n' | b'o' | b'p' | b's', ..] => {
                (organic_symbol(c.to_ascii_uppercase()), 1, true)
            }
            [b'*', ..] => ("*", 1, false),
            _ => {
                let ch =
                    std::str::from_utf8(rest).ok().and_then(|s| s.chars().next()).unwrap_or('?');
                if ch.is_ascii_alphabetic() {
                    return error(here, SmilesErrorKind::UnknownElement(ch.to_string()));
                }
                return error(here, SmilesErrorKind::Unexpected(ch));
            }
        };
        self.at += len;
        let atomic_number =
            if symbol == "*" { 0 } else { element::atomic_number(symbol).expect("organic subset") };
        Ok(WrittenAtom {
            atomic_number,
            aromatic,
            bracket: false,
            isotope: None,
            charge: 0,
            hydrogens: 0,
            position: here,
        })
    }

    fn bracket_atom(&mut self) -> Result<WrittenAtom, SmilesError> {
        let here = self.position();
        let Some(close) = self.bytes[self.at..].iter().position(|&b| b == b']') else {
            return error(here, SmilesErrorKind::UnclosedBracket);
        };
        let end = self.at + close;
        self.at += 1;

        let isotope_digits = self.digits();
        let isotope = if isotope_digits.is_empty() {
            None
        } else {
            Some(
                isotope_digits
                    .parse::<u16>()
                    .or_else(|_| error(here + 1, SmilesErrorKind::NumberTooLarge))?,
            )
        };

        let (atomic_number, aromatic) = self.bracket_symbol(end)?;
        // Chirality: '@', '@@', '@TH1', '@SP2', '@OH12', … — read and ignored.
        if self.bytes.get(self.at) == Some(&b'@') {
            self.at += 1;
            if self.bytes.get(self.at) == Some(&b'@') {
                self.at += 1;
            } else if let Some(class) = self.bytes.get(self.at..self.at + 2)
                && [&b"TH"[..], b"AL", b"SP", b"TB", b"OH"].contains(&class)
            {
                self.at += 2;
                let _ = self.digits();
            }
        }
        let mut hydrogens = 0u8;
        if self.bytes.get(self.at) == Some(&b'H') {
            self.at += 1;
            let count = self.digits();
            hydrogens = if count.is_empty() {
                1
            } else {
                count.parse().or_else(|_| error(here, SmilesErrorKind::NumberTooLarge))?
            };
        }
        let mut charge: i32 = 0;
        if let Some(&sign @ (b'+' | b'-')) = self.bytes.get(self.at) {
            let unit = if sign == b'+' { 1 } else { -1 };
            self.at += 1;
            let count = self.digits();
            if !count.is_empty() {
                let magnitude: i32 =
                    count.parse().or_else(|_| error(here, SmilesErrorKind::NumberTooLarge))?;
                charge = unit * magnitude;
            } else {
                charge = unit;
                while self.bytes.get(self.at) == Some(&sign) {
                    charge += unit;
                    self.at += 1;
                }
            }
            if charge.abs() > 15 {
                return error(here, SmilesErrorKind::NumberTooLarge);
            }
        }
        if self.bytes.get(self.at) == Some(&b':') {
            self.at += 1;
            let _ = self.digits();
        }
        if self.at != end {
            let ch = self.bytes[self.at] as char;
            return error(self.position(), SmilesErrorKind::Unexpected(ch));
        }
        self.at = end + 1;
        Ok(WrittenAtom {
            atomic_number,
            aromatic,
            bracket: true,
            isotope,
            charge: charge as i8,
            hydrogens,
            position: here,
        })
    }

    /// The element symbol inside a bracket: `*`, an element, or one of the
    /// aromatic forms `b c n o p s se as te si`.
    fn bracket_symbol(&mut self, end: usize) -> Result<(u8, bool), SmilesError> {
        let here = self.position();
        let rest = &self.bytes[self.at..end];
        if rest.first() == Some(&b'*') {
            self.at += 1;
            return Ok((0, false));
        }
        for aromatic in [&b"se"[..], b"as", b"te", b"si"] {
            if rest.starts_with(aromatic) {
                self.at += 2;
                let symbol = format!(
                    "{}{}",
                    (aromatic[0] as char).to_ascii_uppercase(),
                    aromatic[1] as char
                );
                return Ok((element::atomic_number(&symbol).expect("known"), true));
            }
        }
        match rest {
            [first @ (b'b' | b'c' | b'n' | b'o' | b'p' | b's'), ..] => {
                self.at += 1;
                return Ok((
                    element::atomic_number(organic_symbol(first.to_ascii_uppercase()))
                        .expect("known"),
                    true,
                ));
            }
            [upper, lower, ..] if upper.is_ascii_uppercase() && lower.is_ascii_lowercase() => {
                let two = format!("{}{}", *upper as char, *lower as char);
                if let Some(z) = element::atomic_number(&two) {
                    self.at += 2;
                    return Ok((z, false));
                }
            }
            _ => {}
        }
        match rest.first() {
            Some(upper) if upper.is_ascii_uppercase() => {
                let one = (*upper as char).to_string();
                match element::atomic_number(&one) {
                    Some(z) => {
                        self.at += 1;
                        Ok((z, false))
                    }
                    None => {
                        let shown: String = rest
                            .iter()
                            .take(2)
                            .map(|&b| b as char)
                            .filter(char::is_ascii_alphabetic)
                            .collect();
                        error(here, SmilesErrorKind::UnknownElement(shown))
                    }
                }
            }
            Some(&other) => {
                let shown: String = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphabetic())
                    .map(|&b| b as char)
                    .collect();
                if shown.is_empty() {
                    error(here, SmilesErrorKind::Unexpected(other as char))
                } else {
                    error(here, SmilesErrorKind::UnknownElement(shown))
                }
            }
            None => error(here, SmilesErrorKind::Unexpected(']')),
        }
    }
}

fn organic_symbol(c: u8) -> &'static str {
    match c {
        b'B' => "B",
        b'C' => "C",
        b'N' => "N",
        b'O' => "O",
        b'P' => "P",
        b'S' => "S",
        b'F' => "F",
        b'I' => "I",
        _ => unreachable!("only organic-subset letters reach here"),
    }
}
