//! Molecules from SMILES and their ECFP fingerprints, computed the way
//! RDKit computes them, with the standard library only.
//!
//! # Status
//!
//! This crate is a placeholder in the workspace's layering and has no
//! public items yet. It will own: the SMILES reader (organic subset,
//! bracket atoms, every bond symbol, ring closures, branches, dots); the
//! molecule model with RDKit's valence and implicit-hydrogen rules, ring
//! perception, kekulization and aromaticity; ECFP bit, count and
//! unfolded-identifier fingerprints of any radius and size; Bemis–Murcko
//! scaffolds; and typed errors that give the position in the SMILES and
//! the problem in a chemist's words. It knows nothing of tensors, files or
//! models.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
