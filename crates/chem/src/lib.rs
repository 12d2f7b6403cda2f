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
//! membership, kekulization and aromaticity perception, and Morgan
//! identifiers, bits and counts of any radius and size.
//!
//! Aromaticity follows RDKit: the aromatic part is kekulized (what has no
//! Kekulé structure is rejected) and aromaticity is perceived afresh with
//! RDKit's default model, so Kekulé-written and aromatic-written input give
//! the same bits. All 7823 Tox21 molecules RDKit accepts match its bits,
//! and the 8 it rejects are rejected.
//!
//! Bemis–Murcko scaffolds come with an order-independent key for grouping
//! molecules by scaffold.
//!
//! FIXME: radical electrons are not part of the aromaticity model (RDKit
//! subtracts them from an atom's electron count); no ring atom in Tox21,
//! Delaney or MUV has one, so nothing measured depends on it. The scaffold
//! key is a graph hash, not RDKit's canonical scaffold SMILES: molecules are
//! grouped the same way, but the key cannot be compared with DeepChem's
//! strings.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod aromaticity;
mod ecfp;
mod element;
mod molecule;
mod scaffold;
mod smiles;

pub use ecfp::{
    EcfpOptions, atom_invariants, ecfp_bits, ecfp_counts, ecfp_identifiers, hash_combine,
};
pub use element::{Valence, ValenceTable};
pub use molecule::{Atom, Bond, BondType, Molecule, ReadOptions};
pub use scaffold::{Scaffold, murcko_scaffold};
pub use smiles::{MAX_SMILES_LEN, SmilesError, SmilesErrorKind};
