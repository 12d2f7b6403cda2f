//! Extended-connectivity fingerprints (Morgan, as RDKit computes them with
//! bond types and without chirality).

use std::collections::HashSet;

use crate::element;
use crate::molecule::Molecule;

/// Fingerprint settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcfpOptions {
    /// Rounds of neighbourhood growth (ECFP4 has radius 2).
    pub radius: u32,
    /// Length of the folded bit vector.
    pub n_bits: u32,
}

impl Default for EcfpOptions {
    fn default() -> Self {
        EcfpOptions { radius: 2, n_bits: 1024 }
    }
}

/// `seed XOR (value + 0x9E3779B9 + (seed << 6) + (seed >> 2))`, in wrapping
/// 32-bit arithmetic: the hash combination RDKit's Morgan code uses.
pub fn hash_combine(seed: u32, value: u32) -> u32 {
    seed ^ value.wrapping_add(0x9E37_79B9).wrapping_add(seed << 6).wrapping_add(seed >> 2)
}

fn hash_list(values: &[u32]) -> u32 {
    values.iter().fold(0, |seed, &v| hash_combine(seed, v))
}

/// The radius-0 invariant of every atom: atomic number, total degree,
/// total hydrogens, charge, mass delta, and 1 for ring atoms.
pub fn atom_invariants(molecule: &Molecule) -> Vec<u32> {
    (0..molecule.atoms.len())
        .map(|idx| {
            let atom = &molecule.atoms[idx];
            let hydrogens = u32::from(atom.hydrogens);
            let degree = molecule.neighbours[idx].len() as u32 + hydrogens;
            let total_h = hydrogens + molecule.hydrogen_neighbours(idx) as u32;
            let mass_delta = match (atom.isotope, element::standard_weight(atom.atomic_number)) {
                (Some(mass_number), Some(weight)) => {
                    (element::isotope_mass(atom.atomic_number, mass_number) - weight).trunc() as i32
                }
                _ => 0,
            };
            let mut list = vec![
                u32::from(atom.atomic_number),
                degree,
                total_h,
                i32::from(atom.charge) as u32,
                mass_delta as u32,
            ];
            if atom.in_ring {
                list.push(1);
            }
            hash_list(&list)
        })
        .collect()
}

/// Every identifier the Morgan algorithm emits, in emission order (radius
/// 0 for every atom, then each round's new environments).
pub fn ecfp_identifiers(molecule: &Molecule, radius: u32) -> Vec<u32> {
    let n_atoms = molecule.atoms.len();
    let mut codes = atom_invariants(molecule);
    let mut emitted = codes.clone();
    // Each environment is its set of bond indices, sorted descending: then
    // comparing two as lists compares them as the integers with bond k as
    // bit k, and the memory stays proportional to the neighbourhoods.
    let mut environments: Vec<Vec<u32>> = vec![Vec::new(); n_atoms];
    let mut dead = vec![false; n_atoms];
    let mut seen: HashSet<Vec<u32>> = HashSet::new();

    for round in 0..radius {
        let mut candidates: Vec<(Vec<u32>, u32, usize)> = Vec::new();
        let mut new_codes = vec![0u32; n_atoms];
        let mut new_environments = environments.clone();
        for atom in 0..n_atoms {
            if dead[atom] {
                continue;
            }
            if molecule.neighbours[atom].is_empty() {
                dead[atom] = true;
                continue;
            }
            let mut environment = environments[atom].clone();
            let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(molecule.neighbours[atom].len());
            for &(other, bond) in &molecule.neighbours[atom] {
                environment.push(bond as u32);
                environment.extend_from_slice(&environments[other]);
                pairs.push((molecule.bonds[bond].kind as u32, codes[other]));
            }
            environment.sort_unstable_by(|a, b| b.cmp(a));
            environment.dedup();
            pairs.sort_unstable();
            let mut code = hash_combine(round, codes[atom]);
            for (bond_type, neighbour_code) in pairs {
                code = hash_combine(code, hash_combine(hash_combine(0, bond_type), neighbour_code));
            }
            new_codes[atom] = code;
            new_environments[atom] = environment.clone();
            candidates.push((environment, code, atom));
        }
        candidates.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        for (environment, code, atom) in candidates {
            if seen.contains(&environment) {
                dead[atom] = true;
            } else {
                emitted.push(code);
                seen.insert(environment);
            }
        }
        codes = new_codes;
        environments = new_environments;
    }
    emitted
}

/// The folded bit vector as the ascending indices of its set bits.
pub fn ecfp_bits(molecule: &Molecule, options: EcfpOptions) -> Vec<u32> {
    let mut bits: Vec<u32> = ecfp_identifiers(molecule, options.radius)
        .into_iter()
        .map(|code| code % options.n_bits)
        .collect();
    bits.sort_unstable();
    bits.dedup();
    bits
}

/// The folded count vector as `(bit, count)` pairs, ascending by bit.
pub fn ecfp_counts(molecule: &Molecule, options: EcfpOptions) -> Vec<(u32, u32)> {
    let mut bits: Vec<u32> = ecfp_identifiers(molecule, options.radius)
        .into_iter()
        .map(|code| code % options.n_bits)
        .collect();
    bits.sort_unstable();
    let mut counts: Vec<(u32, u32)> = Vec::new();
    for bit in bits {
        match counts.last_mut() {
            Some((last, count)) if *last == bit => *count += 1,
            _ => counts.push((bit, 1)),
        }
    }
    counts
}
