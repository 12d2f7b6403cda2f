//! A molecule as RDKit sanitizes it, as far as the fingerprint needs:
//! hydrogen atoms folded into their neighbours, hypervalent groups
//! charge-separated, hydrogen counts and the valence check from RDKit's
//! valence model, and ring membership.

use crate::element::{self, Valence, ValenceTable};
use crate::smiles::{self, SmilesError, SmilesErrorKind, WrittenBond, WrittenMolecule};

/// Bond types, valued as RDKit's enum (these values enter the fingerprint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BondType {
    /// Single.
    Single = 1,
    /// Double.
    Double = 2,
    /// Triple.
    Triple = 3,
    /// Quadruple.
    Quadruple = 4,
    /// Aromatic.
    Aromatic = 12,
}

impl BondType {
    /// Twice the bond order, so that aromatic (1.5) stays an integer.
    pub(crate) fn twice_order(self) -> u32 {
        match self {
            BondType::Single => 2,
            BondType::Double => 4,
            BondType::Triple => 6,
            BondType::Quadruple => 8,
            BondType::Aromatic => 3,
        }
    }
}

/// An atom after sanitization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    /// Atomic number; 0 for `*`.
    pub atomic_number: u8,
    /// Formal charge.
    pub charge: i8,
    /// Mass number, if written.
    pub isotope: Option<u16>,
    /// Hydrogens attached but not in the graph: written in brackets,
    /// folded from `[H]` atoms, or implied by the valence model.
    pub hydrogens: u8,
    /// Whether some bond of the atom lies on a ring.
    pub in_ring: bool,
    /// 0-based byte offset in the SMILES.
    pub position: usize,
}

/// A bond after sanitization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bond {
    /// One end.
    pub begin: usize,
    /// The other end.
    pub end: usize,
    /// Its type.
    pub kind: BondType,
}

/// Options for reading a molecule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// Which RDKit valence table decides what is rejected.
    pub valence_table: ValenceTable,
}

/// A molecule ready for fingerprinting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Molecule {
    /// Atoms, in SMILES order (folded hydrogens removed).
    pub atoms: Vec<Atom>,
    /// Bonds.
    pub bonds: Vec<Bond>,
    /// For each atom, `(neighbour, bond index)` pairs.
    pub neighbours: Vec<Vec<(usize, usize)>>,
}

impl Molecule {
    /// Reads and sanitizes a SMILES with the current RDKit rules.
    ///
    /// # Errors
    ///
    /// Fails with the column and the problem if the SMILES is malformed or
    /// an atom exceeds its allowed valence.
    pub fn from_smiles(smiles: &str) -> Result<Molecule, SmilesError> {
        Self::from_smiles_with(smiles, ReadOptions::default())
    }

    /// [`Molecule::from_smiles`] with options.
    ///
    /// # Errors
    ///
    /// As [`Molecule::from_smiles`].
    pub fn from_smiles_with(smiles: &str, options: ReadOptions) -> Result<Molecule, SmilesError> {
        let written = smiles::parse(smiles)?;
        let mut building = fold_hydrogens(written);
        separate_charges(&mut building);
        let explicit_hydrogens: Vec<u8> = building.atoms.iter().map(|a| a.hydrogens).collect();
        let explicit_valences = assign_hydrogens(&mut building, options.valence_table)?;
        let (aromatic, bracket) = (building.aromatic.clone(), building.bracket.clone());
        let mut molecule = finish(building);
        let written = crate::aromaticity::Written {
            aromatic,
            bracket,
            explicit_hydrogens,
            explicit_valences,
        };
        crate::aromaticity::kekulize_and_perceive(&mut molecule, &written, options.valence_table)?;
        Ok(molecule)
    }

    /// Hydrogen atoms in the graph bonded to `atom_idx`.
    pub fn hydrogen_neighbours(&self, atom_idx: usize) -> usize {
        self.neighbours[atom_idx].iter().filter(|&&(n, _)| self.atoms[n].atomic_number == 1).count()
    }
}

/// Internal atom state during sanitization.
struct Building {
    atoms: Vec<Atom>,
    /// Written lowercase.
    aromatic: Vec<bool>,
    /// Written in brackets.
    bracket: Vec<bool>,
    bonds: Vec<Bond>,
}

/// Drops plain `[H]` atoms with exactly one neighbour that is not a
/// hydrogen, counting them on that neighbour instead (RDKit keeps isotopic,
/// charged, free and H–H hydrogens as atoms).
fn fold_hydrogens(written: WrittenMolecule) -> Building {
    let n = written.atoms.len();
    let mut degree = vec![0usize; n];
    for &(a, b, _) in &written.bonds {
        degree[a] += 1;
        degree[b] += 1;
    }
    let foldable = |idx: usize| {
        let atom = &written.atoms[idx];
        atom.atomic_number == 1
            && atom.isotope.is_none()
            && atom.charge == 0
            && atom.hydrogens == 0
            && degree[idx] == 1
    };
    let mut fold_into = vec![None; n];
    for &(a, b, _) in &written.bonds {
        if foldable(a) && written.atoms[b].atomic_number != 1 {
            fold_into[a] = Some(b);
        } else if foldable(b) && written.atoms[a].atomic_number != 1 {
            fold_into[b] = Some(a);
        }
    }
    let mut new_index = vec![usize::MAX; n];
    let mut building = Building {
        atoms: Vec::new(),
        aromatic: Vec::new(),
        bracket: Vec::new(),
        bonds: Vec::new(),
    };
    for (idx, atom) in written.atoms.iter().enumerate() {
        if fold_into[idx].is_some() {
            continue;
        }
        new_index[idx] = building.atoms.len();
        building.atoms.push(Atom {
            atomic_number: atom.atomic_number,
            charge: atom.charge,
            isotope: atom.isotope,
            hydrogens: atom.hydrogens,
            in_ring: false,
            position: atom.position,
        });
        building.aromatic.push(atom.aromatic);
        building.bracket.push(atom.bracket);
    }
    for target in fold_into.iter().flatten() {
        let atom = &mut building.atoms[new_index[*target]];
        atom.hydrogens = atom.hydrogens.saturating_add(1);
    }
    for &(a, b, written_bond) in &written.bonds {
        if fold_into[a].is_some() || fold_into[b].is_some() {
            continue;
        }
        let (a, b) = (new_index[a], new_index[b]);
        let both_aromatic = building.aromatic[a] && building.aromatic[b];
        let kind = match written_bond {
            WrittenBond::Implicit if both_aromatic => BondType::Aromatic,
            WrittenBond::Implicit | WrittenBond::Single => BondType::Single,
            WrittenBond::Double => BondType::Double,
            WrittenBond::Triple => BondType::Triple,
            WrittenBond::Quadruple => BondType::Quadruple,
            WrittenBond::Aromatic => BondType::Aromatic,
        };
        building.bonds.push(Bond { begin: a, end: b, kind });
    }
    building
}

/// Twice the sum of bond orders of every atom, plus twice its hydrogens.
fn twice_bond_sums(building: &Building) -> Vec<u32> {
    let mut sums: Vec<u32> = building.atoms.iter().map(|a| 2 * u32::from(a.hydrogens)).collect();
    for bond in &building.bonds {
        sums[bond.begin] += bond.kind.twice_order();
        sums[bond.end] += bond.kind.twice_order();
    }
    sums
}

/// RDKit's clean-ups of neutral hypervalent groups: nitro-like N(=O)=O and
/// azides, P(=O)=C/N, and halogen oxides become charge-separated.
fn separate_charges(building: &mut Building) {
    let sums = twice_bond_sums(building);
    let mut bonds_of: Vec<Vec<usize>> = vec![Vec::new(); building.atoms.len()];
    for (b, bond) in building.bonds.iter().enumerate() {
        bonds_of[bond.begin].push(b);
        bonds_of[bond.end].push(b);
    }
    let n_neighbours = |_: &Building, idx: usize| bonds_of[idx].len();
    let other = |bond: &Bond, idx: usize| if bond.begin == idx { bond.end } else { bond.begin };
    for (idx, twice_sum) in sums.iter().enumerate() {
        let atom = &building.atoms[idx];
        let (z, charge, valence) = (atom.atomic_number, atom.charge, twice_sum.div_ceil(2));
        if charge != 0 {
            continue;
        }
        let bonds_here = &bonds_of[idx];
        let to_neutral = |building: &Building, bond: usize, kind: BondType, partner_z: u8| {
            let b = &building.bonds[bond];
            let partner = other(b, idx);
            b.kind == kind
                && building.atoms[partner].atomic_number == partner_z
                && building.atoms[partner].charge == 0
        };
        match z {
            7 if valence == 5 => {
                if let Some(&bond) =
                    bonds_here.iter().find(|&&b| to_neutral(building, b, BondType::Double, 8))
                {
                    let partner = other(&building.bonds[bond], idx);
                    building.bonds[bond].kind = BondType::Single;
                    building.atoms[idx].charge = 1;
                    building.atoms[partner].charge = -1;
                } else if let Some(&bond) =
                    bonds_here.iter().find(|&&b| to_neutral(building, b, BondType::Triple, 7))
                {
                    let partner = other(&building.bonds[bond], idx);
                    building.bonds[bond].kind = BondType::Double;
                    building.atoms[idx].charge = 1;
                    building.atoms[partner].charge = -1;
                }
            }
            15 if valence == 5 && n_neighbours(building, idx) == 3 => {
                let to_carbon_or_nitrogen = bonds_here.iter().any(|&b| {
                    let bond = &building.bonds[b];
                    let partner = other(bond, idx);
                    bond.kind == BondType::Double
                        && matches!(building.atoms[partner].atomic_number, 6 | 7)
                        && n_neighbours(building, partner) >= 2
                });
                if to_carbon_or_nitrogen
                    && let Some(&bond) =
                        bonds_here.iter().find(|&&b| to_neutral(building, b, BondType::Double, 8))
                {
                    let partner = other(&building.bonds[bond], idx);
                    building.bonds[bond].kind = BondType::Single;
                    building.atoms[idx].charge = 1;
                    building.atoms[partner].charge = -1;
                }
            }
            17 | 35 | 53 if matches!(valence, 3 | 5 | 7) => {
                let all_oxygen = !bonds_here.is_empty()
                    && bonds_here.iter().all(|&b| {
                        building.atoms[other(&building.bonds[b], idx)].atomic_number == 8
                    });
                if all_oxygen {
                    let mut gained = 0i8;
                    for &bond in bonds_here {
                        let partner = other(&building.bonds[bond], idx);
                        if building.bonds[bond].kind == BondType::Double
                            && building.atoms[partner].charge == 0
                        {
                            building.bonds[bond].kind = BondType::Single;
                            building.atoms[partner].charge = -1;
                            gained += 1;
                        }
                    }
                    building.atoms[idx].charge = gained;
                }
            }
            _ => {}
        }
    }
}

/// The valence list RDKit uses for an atom: that of the element with
/// atomic number `Z − charge`, unless the atom's own list has no limit.
pub(crate) fn effective_valences(z: u8, charge: i8, table: ValenceTable) -> &'static [Valence] {
    let own = element::valences(z, table);
    if own == [Valence::Any] {
        return own;
    }
    let effective = i32::from(z) - i32::from(charge);
    if (1..=118).contains(&effective) { element::valences(effective as u8, table) } else { own }
}

/// Implicit hydrogens for organic-subset atoms and the valence check for
/// every atom, by RDKit's valence model.
///
/// Returns every atom's explicit valence as the model counts it.
fn assign_hydrogens(building: &mut Building, table: ValenceTable) -> Result<Vec<u32>, SmilesError> {
    let sums = twice_bond_sums(building);
    let mut explicit_valences = vec![0u32; building.atoms.len()];
    let mut has_aromatic_bond = vec![false; building.atoms.len()];
    for bond in building.bonds.iter().filter(|b| b.kind == BondType::Aromatic) {
        has_aromatic_bond[bond.begin] = true;
        has_aromatic_bond[bond.end] = true;
    }
    for idx in 0..building.atoms.len() {
        let atom = &building.atoms[idx];
        if atom.atomic_number == 0 {
            continue;
        }
        let list = effective_valences(atom.atomic_number, atom.charge, table);
        let aromatic = building.aromatic[idx] || has_aromatic_bond[idx];
        let mut twice_sum = sums[idx];
        let default = match list[0] {
            Valence::Exactly(v) => Some(u32::from(v)),
            Valence::Any => None,
        };
        // An aromatic atom above its default valence is taken down to the
        // largest allowed valence below, if within one and a half bonds
        // (fused carbons: 4.5 → 4; pyrrole-type nitrogens: 4 → 3).
        if let Some(dv) = default
            && aromatic
            && twice_sum > 2 * dv
        {
            let mut largest = dv;
            for valence in list {
                match valence {
                    Valence::Exactly(v) if 2 * u32::from(*v) <= twice_sum => {
                        largest = u32::from(*v)
                    }
                    _ => break,
                }
            }
            if twice_sum - 2 * largest <= 3 {
                twice_sum = 2 * largest;
            }
        }
        let explicit = twice_sum.div_ceil(2);
        explicit_valences[idx] = explicit;
        check_valence(atom, idx, explicit, list, table)?;
        if building.bracket[idx] {
            continue;
        }
        let implicit = match default {
            None => 0,
            Some(dv) if aromatic => dv.saturating_sub(explicit),
            Some(_) => list
                .iter()
                .find_map(|v| match v {
                    Valence::Exactly(v) if u32::from(*v) >= explicit => {
                        Some(u32::from(*v) - explicit)
                    }
                    _ => None,
                })
                .unwrap_or(0),
        };
        let atom = &mut building.atoms[idx];
        atom.hydrogens = atom.hydrogens.saturating_add(implicit as u8);
    }
    Ok(explicit_valences)
}

fn check_valence(
    atom: &Atom,
    idx: usize,
    explicit: u32,
    list: &[Valence],
    table: ValenceTable,
) -> Result<(), SmilesError> {
    let own = element::valences(atom.atomic_number, table);
    if list.last() == Some(&Valence::Any) || own.last() == Some(&Valence::Any) {
        return Ok(());
    }
    let effective = i32::from(atom.atomic_number) - i32::from(atom.charge);
    let (limit_list, valence) = match atom.atomic_number {
        15 | 16 if effective > 16 => (own, explicit as i32 - i32::from(atom.charge)),
        33 | 34 if effective > 34 => (own, explicit as i32 - i32::from(atom.charge)),
        1 if atom.charge == -1 => (&[Valence::Exactly(2)][..], explicit as i32),
        _ => (list, explicit as i32),
    };
    let Some(Valence::Exactly(max)) = limit_list.last() else { return Ok(()) };
    if valence > i32::from(*max) {
        return Err(SmilesError {
            column: atom.position + 1,
            kind: SmilesErrorKind::Valence {
                symbol: element::symbol(atom.atomic_number).to_owned(),
                atom: idx + 1,
                valence: valence as u32,
                allowed: u32::from(*max),
            },
        });
    }
    Ok(())
}

/// Builds the neighbour lists and marks ring atoms: those with a bond that
/// is not a bridge of the graph (a bond is on a cycle exactly when removing
/// it leaves its ends connected).
fn finish(building: Building) -> Molecule {
    let n = building.atoms.len();
    let mut neighbours = vec![Vec::new(); n];
    for (bond_idx, bond) in building.bonds.iter().enumerate() {
        neighbours[bond.begin].push((bond.end, bond_idx));
        neighbours[bond.end].push((bond.begin, bond_idx));
    }
    let bridges = find_bridges(&neighbours, building.bonds.len());
    let mut atoms = building.atoms;
    for (bond_idx, bond) in building.bonds.iter().enumerate() {
        if !bridges[bond_idx] {
            atoms[bond.begin].in_ring = true;
            atoms[bond.end].in_ring = true;
        }
    }
    Molecule { atoms, bonds: building.bonds, neighbours }
}

/// Tarjan's bridge finding by low-link values, with an explicit stack so
/// that long chains cannot overflow the call stack.
fn find_bridges(neighbours: &[Vec<(usize, usize)>], n_bonds: usize) -> Vec<bool> {
    let n = neighbours.len();
    let mut discovered = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut bridge = vec![false; n_bonds];
    let mut timer = 0;
    for root in 0..n {
        if discovered[root] != usize::MAX {
            continue;
        }
        discovered[root] = timer;
        low[root] = timer;
        timer += 1;
        // (atom, bond it was reached by, next neighbour to look at)
        let mut stack: Vec<(usize, Option<usize>, usize)> = vec![(root, None, 0)];
        while let Some(top) = stack.last_mut() {
            let (atom, via, next) = *top;
            if next < neighbours[atom].len() {
                top.2 += 1;
                let (other, bond) = neighbours[atom][next];
                if Some(bond) == via {
                    continue;
                }
                if discovered[other] == usize::MAX {
                    discovered[other] = timer;
                    low[other] = timer;
                    timer += 1;
                    stack.push((other, Some(bond), 0));
                } else {
                    low[atom] = low[atom].min(discovered[other]);
                }
            } else {
                stack.pop();
                if let (Some(bond), Some(&(parent, _, _))) = (via, stack.last()) {
                    low[parent] = low[parent].min(low[atom]);
                    if low[atom] > discovered[parent] {
                        bridge[bond] = true;
                    }
                }
            }
        }
    }
    bridge
}
