//! Bemis–Murcko scaffolds: a molecule's rings and the chains that link
//! them, with side chains cut off.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::molecule::{BondType, Molecule};

/// The atoms of a molecule's Bemis–Murcko scaffold, and a key that is
/// equal for equal scaffolds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scaffold {
    /// Indices of the scaffold's atoms, ascending; empty for a molecule
    /// without rings.
    pub atoms: Vec<usize>,
    /// A hash of the scaffold's graph (elements, charges and bond types)
    /// that does not depend on atom order, for grouping molecules by
    /// scaffold; 0 for the empty scaffold.
    pub key: u64,
}

/// The Bemis–Murcko scaffold of `molecule`: atoms are stripped, one layer
/// after another, while they have a single neighbour and are not in a ring,
/// which leaves the rings and the chains between them; then a terminal atom
/// joined by a double bond to what is left goes back with it, as in RDKit
/// (the carbonyl oxygen of a cyclohexanone is part of its scaffold).
pub fn murcko_scaffold(molecule: &Molecule) -> Scaffold {
    let n = molecule.atoms.len();
    let mut kept = vec![true; n];
    let mut degree: Vec<usize> = (0..n).map(|a| molecule.neighbours[a].len()).collect();
    let mut queue: Vec<usize> =
        (0..n).filter(|&a| degree[a] <= 1 && !molecule.atoms[a].in_ring).collect();
    while let Some(atom) = queue.pop() {
        if !kept[atom] {
            continue;
        }
        kept[atom] = false;
        for &(other, _) in &molecule.neighbours[atom] {
            if kept[other] {
                degree[other] -= 1;
                if degree[other] <= 1 && !molecule.atoms[other].in_ring {
                    queue.push(other);
                }
            }
        }
    }
    // Terminal atoms doubly bonded to the core go back with it.
    let core = kept.clone();
    for bond in &molecule.bonds {
        if bond.kind != BondType::Double {
            continue;
        }
        for (inner, outer) in [(bond.begin, bond.end), (bond.end, bond.begin)] {
            if core[inner] && !core[outer] && molecule.neighbours[outer].len() == 1 {
                kept[outer] = true;
            }
        }
    }
    if !molecule.atoms.iter().any(|a| a.in_ring) {
        return Scaffold { atoms: Vec::new(), key: 0 };
    }
    let atoms: Vec<usize> = (0..n).filter(|&a| kept[a]).collect();
    let key = graph_key(molecule, &kept);
    Scaffold { atoms, key }
}

/// An order-independent hash of the kept subgraph: three rounds of
/// neighbourhood refinement over (element, charge, ring flag) labels and
/// bond types, then the sorted labels.
fn graph_key(molecule: &Molecule, kept: &[bool]) -> u64 {
    let hash = |value: &dyn Fn(&mut DefaultHasher)| {
        let mut hasher = DefaultHasher::new();
        value(&mut hasher);
        hasher.finish()
    };
    let mut labels: Vec<u64> = (0..molecule.atoms.len())
        .map(|a| {
            let atom = &molecule.atoms[a];
            hash(&|h| (atom.atomic_number, atom.charge, atom.in_ring).hash(h))
        })
        .collect();
    for _ in 0..3 {
        labels = (0..molecule.atoms.len())
            .map(|a| {
                if !kept[a] {
                    return 0;
                }
                let mut around: Vec<(u32, u64)> = molecule.neighbours[a]
                    .iter()
                    .filter(|&&(other, _)| kept[other])
                    .map(|&(other, b)| (molecule.bonds[b].kind as u32, labels[other]))
                    .collect();
                around.sort_unstable();
                hash(&|h| (labels[a], &around).hash(h))
            })
            .collect();
    }
    let mut kept_labels: Vec<u64> =
        (0..labels.len()).filter(|&a| kept[a]).map(|a| labels[a]).collect();
    kept_labels.sort_unstable();
    hash(&|h| kept_labels.hash(h)).max(1)
}
