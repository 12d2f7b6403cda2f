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
    /// A hash of the scaffold as RDKit writes it without stereochemistry
    /// (`MurckoScaffoldSmiles(includeChirality=False)`): its graph of
    /// elements, charges and bond types, and the hydrogens of its aromatic
    /// atoms other than carbon. It does not depend on atom order; molecules
    /// of Tox21 share a key exactly when RDKit gives them the same scaffold
    /// SMILES. 0 for the empty scaffold.
    pub key: u64,
}

/// The Bemis–Murcko scaffold of `molecule`, by RDKit's rules
/// (`MurckoDecompose`): the ring atoms and the chains that link rings
/// stay; so does any other atom joined to one of those by a double bond
/// (the carbonyl oxygen of a cyclohexanone, the carbon of an exocyclic
/// `C=C`, whatever else it carries); the rest is cut off.
pub fn murcko_scaffold(molecule: &Molecule) -> Scaffold {
    if !molecule.atoms.iter().any(|a| a.in_ring) {
        return Scaffold { atoms: Vec::new(), key: 0 };
    }
    let n = molecule.atoms.len();
    // Stripping chain ends, layer after layer, leaves the rings and the
    // chains between them.
    let mut core = vec![true; n];
    let mut degree: Vec<usize> = (0..n).map(|a| molecule.neighbours[a].len()).collect();
    let mut queue: Vec<usize> =
        (0..n).filter(|&a| degree[a] <= 1 && !molecule.atoms[a].in_ring).collect();
    while let Some(atom) = queue.pop() {
        if !core[atom] {
            continue;
        }
        core[atom] = false;
        for &(other, _) in &molecule.neighbours[atom] {
            if core[other] {
                degree[other] -= 1;
                if degree[other] <= 1 && !molecule.atoms[other].in_ring {
                    queue.push(other);
                }
            }
        }
    }
    let mut kept = core.clone();
    for bond in &molecule.bonds {
        if bond.kind != BondType::Double {
            continue;
        }
        for (inner, outer) in [(bond.begin, bond.end), (bond.end, bond.begin)] {
            if core[inner] && !core[outer] {
                kept[outer] = true;
            }
        }
    }
    let atoms: Vec<usize> = (0..n).filter(|&a| kept[a]).collect();
    let key = graph_key(molecule, &kept);
    Scaffold { atoms, key }
}

/// The hydrogens a kept atom shows in the scaffold's SMILES, where the
/// graph alone does not settle them: an aromatic atom other than a neutral
/// carbon that lost a neighbour gets one (RDKit's `[nH]` for the nitrogen
/// of an N-substituted pyrrole), and otherwise keeps its own. For every
/// other atom the valence of what is kept implies them, so they do not
/// enter the key.
fn shown_hydrogens(molecule: &Molecule, kept: &[bool], atom: usize) -> u8 {
    let neighbours = &molecule.neighbours[atom];
    let aromatic = neighbours.iter().any(|&(_, b)| molecule.bonds[b].kind == BondType::Aromatic);
    let a = &molecule.atoms[atom];
    if !aromatic || (a.atomic_number == 6 && a.charge == 0) {
        return 0;
    }
    let lost_one = neighbours.iter().any(|&(other, _)| !kept[other]);
    if lost_one { 1 } else { a.hydrogens + molecule.hydrogen_neighbours(atom) as u8 }
}

/// An order-independent hash of the kept subgraph: rounds of neighbourhood
/// refinement over (element, charge, shown hydrogens) labels and bond
/// types until they split the atoms into no more classes (so that a
/// difference anywhere reaches every label, and isomorphic scaffolds stop
/// after the same round), then each connected part's sorted labels, and
/// the parts' hashes sorted. Refinement alone cannot tell rings of equal atoms
/// apart by size (two cyclohexanes look like one cyclododecane to it);
/// the parts can.
fn graph_key(molecule: &Molecule, kept: &[bool]) -> u64 {
    let hash = |value: &dyn Fn(&mut DefaultHasher)| {
        let mut hasher = DefaultHasher::new();
        value(&mut hasher);
        hasher.finish()
    };
    let mut labels: Vec<u64> = (0..molecule.atoms.len())
        .map(|a| {
            let atom = &molecule.atoms[a];
            let hydrogens = if kept[a] { shown_hydrogens(molecule, kept, a) } else { 0 };
            hash(&|h| (atom.atomic_number, atom.charge, hydrogens).hash(h))
        })
        .collect();
    let distinct = |labels: &[u64]| {
        let mut kept_labels: Vec<u64> =
            (0..labels.len()).filter(|&a| kept[a]).map(|a| labels[a]).collect();
        kept_labels.sort_unstable();
        kept_labels.dedup();
        kept_labels.len()
    };
    let mut classes = distinct(&labels);
    loop {
        let refined: Vec<u64> = (0..molecule.atoms.len())
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
        let refined_classes = distinct(&refined);
        labels = refined;
        if refined_classes == classes {
            break;
        }
        classes = refined_classes;
    }
    let mut part_of = vec![usize::MAX; labels.len()];
    let mut parts: Vec<Vec<u64>> = Vec::new();
    for start in (0..labels.len()).filter(|&a| kept[a]) {
        if part_of[start] != usize::MAX {
            continue;
        }
        let mut part = Vec::new();
        let mut stack = vec![start];
        part_of[start] = parts.len();
        while let Some(atom) = stack.pop() {
            part.push(labels[atom]);
            for &(other, _) in &molecule.neighbours[atom] {
                if kept[other] && part_of[other] == usize::MAX {
                    part_of[other] = parts.len();
                    stack.push(other);
                }
            }
        }
        part.sort_unstable();
        parts.push(part);
    }
    let mut part_keys: Vec<u64> = parts.iter().map(|part| hash(&|h| part.hash(h))).collect();
    part_keys.sort_unstable();
    hash(&|h| part_keys.hash(h)).max(1)
}
