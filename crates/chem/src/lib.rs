//! Molecules from SMILES and their ECFP fingerprints, computed the way
//! RDKit computes them, with the standard library only.
//!
//! ```
//! use ferrochem_chem::{ecfp_bits, EcfpOptions, Molecule};
//!
//! let ethanol = Molecule::from_smiles("CCO")?;
//! assert_eq!(ecfp_bits(&ethanol, EcfpOptions::default()), vec![33, 80, 222, 294, 386, 807]);
//! # Ok::<(), ferrochem_chem::SmilesError>(())
//! ```
//!
//! # Status
//!
//! In place: the SMILES reader (organic subset and bracket atoms, every
//! bond symbol, ring closures including `%nn`, branches, dots; chirality and
//! atom classes read and ignored), hydrogen folding, RDKit's charge
//! separation of hypervalent groups, its valence model (implicit hydrogens
//! and the valence check, with the current or the legacy table), ring
//! membership, and Morgan identifiers, bits and counts of any radius and
//! size.
//!
//! FIXME: aromaticity is taken as written. RDKit kekulizes the aromatic
//! part (rejecting what cannot be kekulized) and re-perceives aromaticity
//! with its own model; without that, Kekulé-written input and a few
//! RDKit-written rings that are not aromatic by its model (5 of the 7823
//! Tox21 molecules) get other bits. Kekulization (a perfect matching over
//! the atoms that need a double bond) and the ring-system Hückel test come
//! next; Bemis–Murcko scaffolds after them.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ecfp;
mod element;
mod molecule;
mod smiles;

pub use ecfp::{
    EcfpOptions, atom_invariants, ecfp_bits, ecfp_counts, ecfp_identifiers, hash_combine,
};
pub use element::{Valence, ValenceTable};
pub use molecule::{Atom, Bond, BondType, Molecule, ReadOptions};
pub use smiles::{MAX_SMILES_LEN, SmilesError, SmilesErrorKind};
