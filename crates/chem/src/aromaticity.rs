//! Kekulization of the aromatic part and RDKit's default aromaticity model.
//!
//! RDKit does not trust aromaticity as written: it finds a Kekulé structure
//! (alternating single and double bonds) for everything written aromatic,
//! then decides afresh which rings are aromatic by a Hückel count over ring
//! systems. Bonds it finds aromatic become aromatic; every other bond keeps
//! its Kekulé order. Both steps matter for the fingerprint: Kekulé-written
//! input must come out aromatic, and a few rings written aromatic are not.

use std::collections::{HashSet, VecDeque};

use crate::element::{self, Valence, ValenceTable};
use crate::molecule::{BondType, Molecule};
use crate::smiles::{SmilesError, SmilesErrorKind};

/// What the reader knew about each atom that the molecule does not keep.
pub(crate) struct Written {
    /// Written lowercase.
    pub(crate) aromatic: Vec<bool>,
    /// Written in brackets.
    pub(crate) bracket: Vec<bool>,
    /// Hydrogens written or folded (the rest are implicit).
    pub(crate) explicit_hydrogens: Vec<u8>,
    /// Explicit valence by the valence model, before kekulization.
    pub(crate) explicit_valences: Vec<u32>,
}

/// Outer-shell electrons by atomic number, for the electron count.
fn outer_electrons(z: u8) -> i32 {
    match z {
        1 => 1,
        2 => 2,
        3..=10 => i32::from(z) - 2,
        11..=18 => i32::from(z) - 10,
        19 | 37 | 55 | 87 => 1,
        20 | 38 | 56 | 88 => 2,
        31 | 49 | 81 => 3,
        32 | 50 | 82 => 4,
        33 | 51 | 83 => 5,
        34 | 52 | 84 => 6,
        35 | 53 | 85 => 7,
        36 | 54 | 86 => 8,
        _ => 2,
    }
}

fn default_valence(z: u8, table: ValenceTable) -> Option<i32> {
    match element::valences(z, table)[0] {
        Valence::Exactly(v) => Some(i32::from(v)),
        Valence::Any => None,
    }
}

/// Elements whose charge RDKit counts the other way round when working out
/// the valence an aromatic atom aims for.
fn is_early(z: u8) -> bool {
    matches!(z, 3 | 4 | 5 | 11 | 12 | 13 | 19 | 20 | 21 | 22 | 30 | 31 | 32 | 37 | 38 | 39 | 40 | 41 | 48 | 49 | 50 | 51 | 55 | 56 | 57..=61 | 72 | 73 | 80 | 81 | 82 | 83 | 87 | 88 | 89..=93 | 104..=118)
}

/// Kekulizes, then perceives aromaticity, rewriting the bond types.
pub(crate) fn kekulize_and_perceive(
    molecule: &mut Molecule,
    written: &Written,
    table: ValenceTable,
) -> Result<(), SmilesError> {
    let aromatic_bonds: Vec<usize> = (0..molecule.bonds.len())
        .filter(|&b| molecule.bonds[b].kind == BondType::Aromatic)
        .collect();
    if aromatic_bonds.is_empty() && !written.aromatic.iter().any(|&a| a) {
        return perceive(molecule, written, table);
    }
    kekulize(molecule, written, table, &aromatic_bonds)?;
    perceive(molecule, written, table)
}

fn kekulize(
    molecule: &mut Molecule,
    written: &Written,
    table: ValenceTable,
    aromatic_bonds: &[usize],
) -> Result<(), SmilesError> {
    let n = molecule.atoms.len();
    let mut in_aromatic = vec![false; n];
    for &b in aromatic_bonds {
        in_aromatic[molecule.bonds[b].begin] = true;
        in_aromatic[molecule.bonds[b].end] = true;
    }
    let mut needs_double = vec![false; n];
    for atom in 0..n {
        if !(in_aromatic[atom] || written.aromatic[atom]) {
            continue;
        }
        needs_double[atom] = needs_double_bond(molecule, written, table, atom);
    }
    for &b in aromatic_bonds {
        molecule.bonds[b].kind = BondType::Single;
    }
    // Perfect matching of the atoms that need a double bond, over the bonds
    // that were aromatic, by depth-first search with the most constrained
    // atom first; ring bonds are tried before others.
    let mut candidates: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for &b in aromatic_bonds {
        let bond = molecule.bonds[b];
        if needs_double[bond.begin] && needs_double[bond.end] {
            candidates[bond.begin].push((bond.end, b));
            candidates[bond.end].push((bond.begin, b));
        }
    }
    let ring_bond = |b: usize| {
        molecule.atoms[molecule.bonds[b].begin].in_ring
            && molecule.atoms[molecule.bonds[b].end].in_ring
    };
    for list in &mut candidates {
        list.sort_by_key(|&(_, b)| !ring_bond(b));
    }
    let mut matched = vec![false; n];
    let mut chosen = Vec::new();
    force_matches(&needs_double, &candidates, &mut matched, &mut chosen);
    let n_open = (0..n).filter(|&a| needs_double[a] && !matched[a]).count();
    let mut budget = 100_000usize;
    let solvable = n_open <= MAX_SEARCHED_ATOMS
        && match_atoms(&needs_double, &candidates, &mut matched, &mut chosen, &mut budget);
    if !solvable {
        let atom = (0..n).find(|&a| needs_double[a] && !matched[a]).unwrap_or(0);
        return Err(SmilesError {
            column: molecule.atoms[atom].position + 1,
            kind: SmilesErrorKind::CannotKekulize { atom: atom + 1 },
        });
    }
    for b in chosen {
        molecule.bonds[b].kind = BondType::Double;
    }
    Ok(())
}

/// Atoms left for the backtracking search after forced choices; beyond
/// this the molecule is refused rather than searched (real aromatic systems
/// leave a few dozen at most).
const MAX_SEARCHED_ATOMS: usize = 1024;

/// Makes every forced choice: an atom with a single free partner must take
/// it. This settles chains and most fused systems in linear time, leaving
/// only even cycles for the search.
fn force_matches(
    needs: &[bool],
    candidates: &[Vec<(usize, usize)>],
    matched: &mut [bool],
    chosen: &mut Vec<usize>,
) {
    let free_partners = |atom: usize, matched: &[bool]| {
        candidates[atom].iter().filter(|&&(other, _)| !matched[other]).count()
    };
    let mut queue: Vec<usize> = (0..needs.len()).filter(|&a| needs[a]).collect();
    while let Some(atom) = queue.pop() {
        if matched[atom] || free_partners(atom, matched) != 1 {
            continue;
        }
        let &(other, bond) =
            candidates[atom].iter().find(|&&(other, _)| !matched[other]).expect("one free partner");
        matched[atom] = true;
        matched[other] = true;
        chosen.push(bond);
        for &(next, _) in candidates[other].iter().chain(&candidates[atom]) {
            if !matched[next] {
                queue.push(next);
            }
        }
    }
}

fn match_atoms(
    needs: &[bool],
    candidates: &[Vec<(usize, usize)>],
    matched: &mut [bool],
    chosen: &mut Vec<usize>,
    budget: &mut usize,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    // The unmatched atom with the fewest free partners.
    let mut best: Option<(usize, usize)> = None;
    for atom in 0..needs.len() {
        if !needs[atom] || matched[atom] {
            continue;
        }
        let free = candidates[atom].iter().filter(|&&(other, _)| !matched[other]).count();
        if best.is_none_or(|(_, count)| free < count) {
            best = Some((atom, free));
        }
    }
    let Some((atom, _)) = best else { return true };
    for &(other, bond) in &candidates[atom] {
        if matched[other] {
            continue;
        }
        matched[atom] = true;
        matched[other] = true;
        chosen.push(bond);
        if match_atoms(needs, candidates, matched, chosen, budget) {
            return true;
        }
        chosen.pop();
        matched[atom] = false;
        matched[other] = false;
    }
    false
}

/// Whether an aromatic atom must carry one double bond in the Kekulé form.
fn needs_double_bond(
    molecule: &Molecule,
    written: &Written,
    table: ValenceTable,
    atom: usize,
) -> bool {
    let a = &molecule.atoms[atom];
    let Some(dv) = default_valence(a.atomic_number, table) else { return false };
    let charge = i32::from(a.charge);
    let q = if (a.atomic_number == 6 && charge > 0) || is_early(a.atomic_number) {
        -charge
    } else {
        charge
    };
    let (mut n_aromatic, mut other_orders) = (0i32, 0i32);
    for &(_, b) in &molecule.neighbours[atom] {
        match molecule.bonds[b].kind {
            BondType::Aromatic => n_aromatic += 1,
            kind => other_orders += (kind.twice_order() / 2) as i32,
        }
    }
    let total_h = i32::from(a.hydrogens);
    let implicit_h = total_h - i32::from(written.explicit_hydrogens[atom]);
    let s = n_aromatic + other_orders + total_h;
    let degree = molecule.neighbours[atom].len() as i32;
    let total_valence = written.explicit_valences[atom] as i32 + implicit_h;
    let mut d = dv + q;
    let list = element::valences(a.atomic_number, table);
    let mut rest = list.iter().skip(1);
    while total_valence > d {
        match rest.next() {
            Some(Valence::Exactly(v)) => d = i32::from(*v) + q,
            _ => break,
        }
    }
    if matches!(a.atomic_number, 7 | 15 | 33)
        && total_valence == 5
        && s == 4
        && d == 3
        && degree == 3
        && charge == 0
        && total_h == 0
    {
        d = 5;
    }
    let bracket = written.bracket[atom];
    degree + implicit_h.max(0) < d && (d == s + 1 || (bracket && d == s + 2))
}

/// Every shortest cycle through every ring bond, as atom lists in ring
/// order, de-duplicated by atom set.
fn rings(molecule: &Molecule) -> Vec<Vec<usize>> {
    let mut found: Vec<Vec<usize>> = Vec::new();
    let mut seen: HashSet<Vec<usize>> = HashSet::new();
    for (b, bond) in molecule.bonds.iter().enumerate() {
        if !(molecule.atoms[bond.begin].in_ring && molecule.atoms[bond.end].in_ring) {
            continue;
        }
        for path in shortest_paths(molecule, bond.begin, bond.end, b) {
            let mut key = path.clone();
            key.sort_unstable();
            if seen.insert(key) {
                found.push(path);
            }
        }
    }
    found.sort_by_key(Vec::len);
    found
}

/// Rings are looked for up to this many bonds from a ring bond's end, so
/// that a huge ring system costs time in proportion to its size rather than
/// its square. Rings of up to 256 atoms are found; the largest aromatic
/// macrocycles of real chemistry have around 30.
const MAX_RING_SEARCH_DEPTH: usize = 128;

/// Ring sets examined per ring system in the Hückel test. RDKit tries
/// every connected set of up to six rings; that is exponential in the size
/// of a fused system, so the search stops here (FIXME: a system that needs
/// more than this many sets to be settled would be perceived differently
/// from RDKit; no molecule of Tox21, Delaney or MUV comes near it).
const MAX_RING_SETS: usize = 200_000;

/// All shortest paths from `from` to `to` that do not use bond `skip`.
fn shortest_paths(molecule: &Molecule, from: usize, to: usize, skip: usize) -> Vec<Vec<usize>> {
    let n = molecule.atoms.len();
    let mut distance = vec![usize::MAX; n];
    distance[from] = 0;
    let mut queue = VecDeque::from([from]);
    while let Some(atom) = queue.pop_front() {
        if distance[atom] >= MAX_RING_SEARCH_DEPTH {
            continue;
        }
        for &(other, b) in &molecule.neighbours[atom] {
            if b != skip && distance[other] == usize::MAX {
                distance[other] = distance[atom] + 1;
                queue.push_back(other);
            }
        }
    }
    if distance[to] == usize::MAX {
        return Vec::new();
    }
    // Walk back from `to` along decreasing distances, collecting every path.
    let mut paths = Vec::new();
    let mut stack = vec![vec![to]];
    while let Some(path) = stack.pop() {
        let last = *path.last().expect("paths are never empty");
        if last == from {
            let mut path = path;
            path.reverse();
            paths.push(path);
            if paths.len() > 64 {
                break;
            }
            continue;
        }
        for &(other, b) in &molecule.neighbours[last] {
            if b != skip && distance[other] != usize::MAX && distance[other] + 1 == distance[last] {
                let mut next = path.clone();
                next.push(other);
                stack.push(next);
            }
        }
    }
    paths
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Electrons {
    None,
    Vacant,
    One,
    Two,
}

impl Electrons {
    fn count(self) -> i32 {
        match self {
            Electrons::None | Electrons::Vacant => 0,
            Electrons::One => 1,
            Electrons::Two => 2,
        }
    }
}

fn bond_between(molecule: &Molecule, a: usize, b: usize) -> Option<usize> {
    molecule.neighbours[a].iter().find(|&&(other, _)| other == b).map(|&(_, bond)| bond)
}

fn is_ring_bond(bond: usize, ring_bonds: &HashSet<usize>) -> bool {
    ring_bonds.contains(&bond)
}

/// The electron class of a ring atom in the Kekulé structure.
fn electrons(
    molecule: &Molecule,
    written: &Written,
    table: ValenceTable,
    atom: usize,
    ring_len: usize,
    ring_bonds: &HashSet<usize>,
) -> Electrons {
    let a = &molecule.atoms[atom];
    let Some(dv) = default_valence(a.atomic_number, table) else { return Electrons::None };
    let total_h = i32::from(a.hydrogens);
    let degree = molecule.neighbours[atom].len() as i32;
    let d = degree + total_h;
    if dv <= 1 || d > 3 {
        return Electrons::None;
    }
    let charge = i32::from(a.charge);
    let n_outer = outer_electrons(a.atomic_number);
    let explicit_h = i32::from(written.explicit_hydrogens[atom]);
    let kekule_explicit: i32 = molecule.neighbours[atom]
        .iter()
        .map(|&(_, b)| (molecule.bonds[b].kind.twice_order() / 2) as i32)
        .sum::<i32>()
        + explicit_h;
    let mut n = (dv - d) + (n_outer - dv - charge).max(0);
    if n > 1 && kekule_explicit - degree > 1 {
        n = 1;
    }
    let electronegative = |other: usize| {
        let (z, zo) = (a.atomic_number, molecule.atoms[other].atomic_number);
        let (e, eo) = (outer_electrons(z), outer_electrons(zo));
        eo > e || (eo == e && zo < z)
    };
    let exocyclic = molecule.neighbours[atom]
        .iter()
        .find(|&&(_, b)| molecule.bonds[b].kind.twice_order() >= 4 && !is_ring_bond(b, ring_bonds));
    let ring_multiple = molecule.neighbours[atom]
        .iter()
        .any(|&(_, b)| molecule.bonds[b].kind.twice_order() >= 4 && is_ring_bond(b, ring_bonds));
    let class = match n {
        i32::MIN..=0 => {
            if exocyclic.is_some() {
                Electrons::Vacant
            } else if ring_multiple {
                Electrons::One
            } else {
                Electrons::None
            }
        }
        1 => match exocyclic {
            Some(&(other, _)) => {
                if electronegative(other) {
                    Electrons::Vacant
                } else {
                    Electrons::One
                }
            }
            None if kekule_explicit != degree + explicit_h => Electrons::One,
            None if charge == 1 => Electrons::Vacant,
            None => Electrons::None,
        },
        _ => {
            let mut n = n;
            if let Some(&(other, _)) = exocyclic
                && electronegative(other)
            {
                n -= 1;
            }
            if n % 2 == 1 { Electrons::One } else { Electrons::Two }
        }
    };
    if class == Electrons::Two
        && matches!(a.atomic_number, 8 | 16)
        && charge == 0
        && degree == 2
        && kekule_explicit == degree + explicit_h
        && ring_len >= 9
    {
        return Electrons::None;
    }
    class
}

fn is_candidate(molecule: &Molecule, table: ValenceTable, atom: usize, class: Electrons) -> bool {
    let a = &molecule.atoms[atom];
    if !(a.atomic_number <= 18 || matches!(a.atomic_number, 34 | 52)) || class == Electrons::None {
        return false;
    }
    let kekule_bonds: i32 = molecule.neighbours[atom]
        .iter()
        .map(|&(_, b)| (molecule.bonds[b].kind.twice_order() / 2) as i32)
        .sum();
    if let Some(own) = default_valence(a.atomic_number, table)
        && own > 0
    {
        let effective = i32::from(a.atomic_number) - i32::from(a.charge);
        let limit = if (1..=118).contains(&effective) {
            default_valence(effective as u8, table)
        } else {
            Some(own)
        };
        if let Some(limit) = limit
            && kekule_bonds + i32::from(a.hydrogens) > limit
        {
            return false;
        }
    }
    let degree = molecule.neighbours[atom].len() as i32;
    if kekule_bonds - degree > 1 {
        let n_multiple = molecule.neighbours[atom]
            .iter()
            .filter(|&&(_, b)| molecule.bonds[b].kind.twice_order() >= 4)
            .count();
        if n_multiple > 1 {
            return false;
        }
    }
    true
}

/// RDKit's default aromaticity model over the Kekulé structure.
fn perceive(
    molecule: &mut Molecule,
    written: &Written,
    table: ValenceTable,
) -> Result<(), SmilesError> {
    let rings = rings(molecule);
    if rings.is_empty() {
        return Ok(());
    }
    let ring_bond_lists: Vec<Vec<usize>> = rings
        .iter()
        .map(|ring| {
            (0..ring.len())
                .map(|i| {
                    bond_between(molecule, ring[i], ring[(i + 1) % ring.len()])
                        .expect("rings follow bonds")
                })
                .collect()
        })
        .collect();
    let all_ring_bonds: HashSet<usize> = ring_bond_lists.iter().flatten().copied().collect();

    let n = molecule.atoms.len();
    let mut class: Vec<Option<Electrons>> = vec![None; n];
    for ring in &rings {
        for &atom in ring {
            if class[atom].is_none() {
                class[atom] =
                    Some(electrons(molecule, written, table, atom, ring.len(), &all_ring_bonds));
            }
        }
    }
    let candidate_ring: Vec<bool> = rings
        .iter()
        .map(|ring| {
            ring.iter().all(|&atom| {
                is_candidate(molecule, table, atom, class[atom].unwrap_or(Electrons::None))
            })
        })
        .collect();

    // Ring systems: candidate rings linked when they share exactly one bond.
    let candidates: Vec<usize> = (0..rings.len()).filter(|&r| candidate_ring[r]).collect();
    let shares_one_bond = |r: usize, s: usize| {
        ring_bond_lists[r].len() <= 24
            && ring_bond_lists[s].len() <= 24
            && ring_bond_lists[r].iter().filter(|b| ring_bond_lists[s].contains(b)).count() == 1
    };
    let mut system_of = vec![usize::MAX; rings.len()];
    let mut systems: Vec<Vec<usize>> = Vec::new();
    for &start in &candidates {
        if system_of[start] != usize::MAX {
            continue;
        }
        let id = systems.len();
        let mut members = vec![start];
        system_of[start] = id;
        let mut cursor = 0;
        while cursor < members.len() {
            let r = members[cursor];
            cursor += 1;
            for &s in &candidates {
                if system_of[s] == usize::MAX && shares_one_bond(r, s) {
                    system_of[s] = id;
                    members.push(s);
                }
            }
        }
        systems.push(members);
    }

    let mut aromatic_bond = vec![false; molecule.bonds.len()];
    for system in &systems {
        let system_bonds: HashSet<usize> =
            system.iter().flat_map(|&r| ring_bond_lists[r].iter().copied()).collect();
        let max_k = system.len().min(6);
        let mut budget = MAX_RING_SETS;
        'sizes: for k in 1..=max_k {
            let mut subset = Vec::with_capacity(k);
            // Enumerate k-subsets of the system in index order.
            let mut indices: Vec<usize> = (0..k).collect();
            loop {
                if budget == 0 {
                    break 'sizes;
                }
                budget -= 1;
                subset.clear();
                subset.extend(indices.iter().map(|&i| system[i]));
                if connected(&subset, &shares_one_bond) && huckel(&subset, &rings, &class) {
                    for &b in subset.iter().flat_map(|&r| ring_bond_lists[r].iter()) {
                        let uses =
                            subset.iter().filter(|&&r| ring_bond_lists[r].contains(&b)).count();
                        if uses == 1 {
                            aromatic_bond[b] = true;
                        }
                    }
                    if system_bonds.iter().all(|&b| aromatic_bond[b]) {
                        break 'sizes;
                    }
                }
                if !next_combination(&mut indices, system.len()) {
                    break;
                }
            }
        }
    }
    for (b, bond) in molecule.bonds.iter_mut().enumerate() {
        if aromatic_bond[b] && matches!(bond.kind, BondType::Single | BondType::Double) {
            bond.kind = BondType::Aromatic;
        }
    }
    Ok(())
}

fn next_combination(indices: &mut [usize], n: usize) -> bool {
    let k = indices.len();
    for i in (0..k).rev() {
        if indices[i] < n - k + i {
            indices[i] += 1;
            for j in i + 1..k {
                indices[j] = indices[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

fn connected(subset: &[usize], linked: &impl Fn(usize, usize) -> bool) -> bool {
    let mut reached = vec![false; subset.len()];
    reached[0] = true;
    let mut stack = vec![0];
    while let Some(i) = stack.pop() {
        for j in 0..subset.len() {
            if !reached[j] && linked(subset[i], subset[j]) {
                reached[j] = true;
                stack.push(j);
            }
        }
    }
    reached.iter().all(|&r| r)
}

/// The Hückel rule over the atoms in one or two of the chosen rings.
fn huckel(subset: &[usize], rings: &[Vec<usize>], class: &[Option<Electrons>]) -> bool {
    let mut count_in: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for &r in subset {
        for &atom in &rings[r] {
            *count_in.entry(atom).or_default() += 1;
        }
    }
    let electrons: i32 = count_in
        .iter()
        .filter(|&(_, &c)| c <= 2)
        .map(|(&atom, _)| class[atom].unwrap_or(Electrons::None).count())
        .sum();
    (electrons >= 6 && electrons % 4 == 2) || electrons == 2
}
