//! The periodic table as far as RDKit's valence model and the ECFP atom
//! invariants need it.

/// Element symbols by atomic number (index 0 is the dummy atom `*`).
const SYMBOLS: [&str; 119] = [
    "*", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd",
    "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
    "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
];

/// Atomic number of `symbol` (exact case), if it is an element.
pub fn atomic_number(symbol: &str) -> Option<u8> {
    SYMBOLS.iter().position(|&s| s == symbol).filter(|&z| z > 0).map(|z| z as u8)
}

/// The symbol of atomic number `z`.
pub fn symbol(z: u8) -> &'static str {
    SYMBOLS.get(z as usize).copied().unwrap_or("?")
}

/// An allowed valence, or no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Valence {
    /// Exactly this many bonds (counting bond orders and hydrogens).
    Exactly(u8),
    /// No limit (metals).
    Any,
}

/// Which valence table to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ValenceTable {
    /// RDKit 2024.09 and later (six-coordinate aluminium is rejected).
    #[default]
    Current,
    /// RDKit 2024.03 and earlier (aluminium may also have valence 6).
    Legacy,
}

use Valence::{Any, Exactly as V};

/// RDKit's allowed valences of atomic number `z`, default first.
pub fn valences(z: u8, table: ValenceTable) -> &'static [Valence] {
    match z {
        1 => &[V(1)],
        2 | 10 | 18 | 36 | 86 => &[V(0)],
        3 | 11 | 19 | 37 => &[V(1), Any],
        55 | 87 => &[V(1)],
        4 => &[V(2)],
        12 | 20 | 38 | 56 | 88 => &[V(2), Any],
        5 | 31 | 49 => &[V(3)],
        6 | 14 | 32 => &[V(4)],
        7 => &[V(3)],
        8 => &[V(2)],
        9 | 17 | 35 => &[V(1)],
        13 if table == ValenceTable::Legacy => &[V(3), V(6)],
        13 => &[V(3)],
        15 | 33 | 51 | 83 => &[V(3), V(5)],
        16 | 34 | 52 | 84 => &[V(2), V(4), V(6)],
        50 | 82 => &[V(2), V(4)],
        53 | 85 => &[V(1), V(3), V(5)],
        54 => &[V(0), V(2), V(4), V(6)],
        _ => &[Any],
    }
}

/// Standard atomic weight, for the mass-delta invariant of isotopes.
///
/// FIXME: only the elements that organic chemistry labels isotopically
/// carry a weight (H to Ca, Br, I); an isotope written on any other element
/// gets a mass delta of 0 where RDKit would compute one. The way out is the
/// full table of standard weights and isotope masses.
pub fn standard_weight(z: u8) -> Option<f64> {
    const WEIGHTS: [f64; 21] = [
        0.0, 1.008, 4.003, 6.941, 9.012, 10.812, 12.011, 14.007, 15.999, 18.998, 20.18, 22.99,
        24.305, 26.982, 28.086, 30.974, 32.067, 35.453, 39.948, 39.098, 40.078,
    ];
    match z {
        1..=20 => Some(WEIGHTS[z as usize]),
        35 => Some(79.904),
        53 => Some(126.904),
        _ => None,
    }
}

/// The exact mass of an isotope, where RDKit's table has one that differs
/// from the mass number in its integer part.
pub fn isotope_mass(z: u8, mass_number: u16) -> f64 {
    match (z, mass_number) {
        (1, 2) => 2.014_101_8,
        (1, 3) => 3.016_049_3,
        (6, 11) => 11.011_433_6,
        (6, 13) => 13.003_354_8,
        (6, 14) => 14.003_242,
        (7, 13) => 13.005_738_6,
        (7, 15) => 15.000_108_9,
        (8, 17) => 16.999_131_7,
        (8, 18) => 17.999_161,
        (9, 18) => 18.000_938,
        (15, 32) => 31.973_907_6,
        (15, 33) => 32.971_725_5,
        (16, 34) => 33.967_867,
        (16, 35) => 34.969_032,
        (17, 35) => 34.968_852_7,
        (17, 36) => 35.968_306_8,
        (17, 37) => 36.965_902_6,
        (35, 79) => 78.918_337_1,
        (35, 81) => 80.916_290_6,
        (35, 82) => 81.916_804,
        (53, 123) => 122.905_589,
        (53, 124) => 123.906_209_9,
        (53, 125) => 124.904_630_2,
        (53, 127) => 126.904_473,
        (53, 131) => 130.906_124_6,
        _ => f64::from(mass_number),
    }
}
