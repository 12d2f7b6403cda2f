//! The fingerprint and the scaffolds against RDKit: the worked examples,
//! hash test vectors, and every Tox21 molecule.

use std::io::Read;

use ferrochem_chem::{
    EcfpOptions, Molecule, ReadOptions, SmilesErrorKind, ValenceTable, ecfp_bits, ecfp_counts,
    hash_combine,
};

fn bits(smiles: &str) -> Vec<u32> {
    ecfp_bits(&Molecule::from_smiles(smiles).unwrap(), EcfpOptions::default())
}

#[test]
fn hash_test_vectors() {
    assert_eq!(hash_combine(0, 0), 2_654_435_769);
    let list = [6u32, 4, 3, 0, 0];
    assert_eq!(list.iter().fold(0, |s, &v| hash_combine(s, v)), 2_246_728_737);
    assert_eq!(hash_combine(hash_combine(0, 1), 2_245_384_272), 1_196_353_357);
}

#[test]
fn worked_examples_match_rdkit() {
    // RDKit 2026.09.1, radius 2, 1024 bits.
    let cases: [(&str, &[u32]); 11] = [
        ("C1=CC=CC=C1", &[64, 389, 849]),
        (
            "O=c1c(=O)c2cccc3cccc1c32",
            &[15, 63, 64, 201, 314, 352, 356, 452, 545, 650, 725, 726, 831, 849, 960, 984, 1007],
        ),
        ("CCO", &[33, 80, 222, 294, 386, 807]),
        ("CO", &[33, 131, 807]),
        ("c1ccncc1", &[64, 131, 378, 383, 389, 437, 579, 842, 849]),
        ("c1cc[nH]c1", &[64, 80, 90, 121, 482, 849, 884, 939]),
        ("C[N+](=O)[O-]", &[33, 77, 152, 650, 715, 753, 838, 939]),
        ("CC(=O)[O-].[Na+]", &[33, 189, 202, 650, 715, 785, 807, 893, 1017]),
        ("[2H]OC", &[33, 194, 619, 786, 807, 1017]),
        ("CN(=O)=O", &[33, 77, 152, 650, 715, 753, 838, 939]),
        (
            "CCOc1ccc2nc(S(N)(=O)=O)sc2c1",
            &[
                33, 56, 69, 73, 80, 147, 159, 162, 214, 237, 294, 322, 350, 356, 371, 378, 428,
                452, 477, 485, 493, 557, 583, 645, 650, 675, 695, 705, 718, 726, 831, 833, 849,
                875, 885, 961,
            ],
        ),
    ];
    for (smiles, expected) in cases {
        assert_eq!(bits(smiles), expected, "{smiles}");
    }
}

#[test]
fn six_coordinate_aluminium_follows_the_chosen_table() {
    let smiles = "CC(=O)O[AlH3](O)O";
    let err = Molecule::from_smiles(smiles).unwrap_err();
    assert!(matches!(err.kind, SmilesErrorKind::Valence { valence: 6, allowed: 3, .. }), "{err}");
    assert_eq!(err.to_string(), "Al at atom 5 (column 8) has valence 6, allowed 3");
    let legacy =
        Molecule::from_smiles_with(smiles, ReadOptions { valence_table: ValenceTable::Legacy })
            .unwrap();
    assert_eq!(
        ecfp_bits(&legacy, EcfpOptions::default()),
        vec![11, 33, 158, 186, 277, 375, 440, 566, 650, 695, 807, 885, 893, 1017]
    );
}

#[test]
fn errors_say_where_and_what() {
    let message = |smiles: &str| Molecule::from_smiles(smiles).unwrap_err().to_string();
    assert_eq!(message("C1CCC"), "ring bond 1 opened at column 2 is never closed");
    assert_eq!(message("CC[Xx]"), "unknown element 'Xx' at column 4");
    assert_eq!(message("CC(C"), "the branch opened at column 3 is never closed");
    assert_eq!(message("CC)C"), "')' at column 3 closes no branch");
    assert_eq!(message("C[NH4"), "the bracket atom opened at column 2 is never closed");
    assert_eq!(message("CN(C)(C)(C)C"), "N at atom 2 (column 2) has valence 5, allowed 3");
    assert_eq!(message("   "), "empty SMILES");
    assert_eq!(message("C="), "the bond at column 2 leads to no atom");
    assert!(message(&"C".repeat(200_000)).contains("longer than"));
}

/// The rows of the RDKit reference file: for every Tox21 row (`row`,
/// `smiles`), RDKit's ECFP4 on-bits (`on_bits`, 1024 bits), whether RDKit
/// 2024.09 and later reject the SMILES, the `bit:count` entries above 1 of
/// RDKit 2026.09.1's count fingerprint (`counts_above_1`, from
/// `GetMorganGenerator(radius=2, fpSize=1024).GetCountFingerprint`; every
/// other on-bit counts 1), and RDKit 2026.09.1's
/// `MurckoScaffoldSmiles(includeChirality=False)` (`murcko_scaffold`).
fn rdkit_reference() -> Vec<csv::StringRecord> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tox21_ecfp_rdkit.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    csv::Reader::from_reader(text.as_bytes()).records().map(Result::unwrap).collect()
}

/// Every Tox21 molecule's ECFP4 bits and counts are RDKit's, and we reject
/// the SMILES RDKit rejects.
#[test]
fn every_tox21_molecule_matches_rdkit() {
    let (mut identical, mut rejected, mut differing) = (0, 0, Vec::new());
    for record in rdkit_reference() {
        let (smiles, on_bits, rdkit_rejects) = (&record[1], &record[2], &record[3] == "1");
        match Molecule::from_smiles(smiles) {
            Err(err) => {
                assert!(rdkit_rejects, "{smiles}: we reject what RDKit accepts: {err}");
                rejected += 1;
            }
            Ok(molecule) => {
                assert!(!rdkit_rejects, "{smiles}: RDKit rejects it, we do not");
                let expected: Vec<u32> =
                    on_bits.split_whitespace().map(|b| b.parse().unwrap()).collect();
                let mut expected_counts: Vec<(u32, u32)> =
                    expected.iter().map(|&bit| (bit, 1)).collect();
                for entry in record[4].split_whitespace() {
                    let (bit, count) = entry.split_once(':').unwrap();
                    let (bit, count): (u32, u32) = (bit.parse().unwrap(), count.parse().unwrap());
                    let slot = expected_counts.iter_mut().find(|(b, _)| *b == bit).unwrap();
                    slot.1 = count;
                }
                let options = EcfpOptions::default();
                if ecfp_bits(&molecule, options) == expected
                    && ecfp_counts(&molecule, options) == expected_counts
                {
                    identical += 1;
                } else {
                    differing.push(smiles.to_owned());
                }
            }
        }
    }
    assert_eq!(rejected, 8);
    assert!(
        differing.is_empty(),
        "{} differ: {:?}",
        differing.len(),
        &differing[..differing.len().min(10)]
    );
    assert_eq!(identical + differing.len(), 7823);
}

mod never_panics {
    use ferrochem_chem::{EcfpOptions, Molecule, ecfp_bits};
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        let cases =
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
        ProptestConfig { cases, ..ProptestConfig::default() }
    }

    const SEEDS: [&str; 6] = [
        "CCOc1ccc2nc(S(N)(=O)=O)sc2c1",
        "C[N+](=O)[O-].[Na+]",
        "O=c1c(=O)c2cccc3cccc1c32",
        "C1=CC=CC=C1",
        "[2H]OC([13CH3])=O",
        "c1cc2ccc3cccc4ccc(c1)c2c34",
    ];

    proptest! {
        #![proptest_config(config())]

        // Any string of SMILES characters reads to a molecule or an error.
        #[test]
        fn random_strings(s in "[CNOScnos0-9()=#\\[\\]@+\\-%./\\\\:HBrClFI*]{0,40}") {
            if let Ok(molecule) = Molecule::from_smiles(&s) {
                let _ = ecfp_bits(&molecule, EcfpOptions::default());
            }
        }

        // Valid SMILES with one character replaced, inserted or deleted.
        #[test]
        fn mutated_valid_smiles(seed in 0usize..6, at in 0usize..64, op in 0u8..3, c in proptest::char::range('!', '~')) {
            let mut chars: Vec<char> = SEEDS[seed].chars().collect();
            let at = at % (chars.len() + 1);
            match op {
                0 if at < chars.len() => chars[at] = c,
                1 => chars.insert(at, c),
                _ if at < chars.len() => { chars.remove(at); }
                _ => {}
            }
            let s: String = chars.into_iter().collect();
            if let Ok(molecule) = Molecule::from_smiles(&s) {
                let _ = ecfp_bits(&molecule, EcfpOptions::default());
            }
        }
    }

    #[test]
    fn deep_nesting_and_long_chains_are_handled() {
        let branches = format!("C{}C{}", "(C".repeat(5000), ")".repeat(5000));
        assert!(Molecule::from_smiles(&branches).is_ok());
        let chain = "C".repeat(50_000);
        assert!(
            !ecfp_bits(&Molecule::from_smiles(&chain).unwrap(), EcfpOptions::default()).is_empty()
        );
        let rings: String = (0..2000).map(|i| format!("C{}", i % 10)).collect();
        let _ = Molecule::from_smiles(&rings);
    }
}

#[test]
fn murcko_scaffolds_keep_rings_and_linkers() {
    use ferrochem_chem::murcko_scaffold;
    let scaffold = |smiles: &str| murcko_scaffold(&Molecule::from_smiles(smiles).unwrap());
    // Aspirin and salicylic acid share benzene as their scaffold; toluene
    // too. Biphenyl's differs, and so does diphenylmethane (a linker).
    let benzene = scaffold("c1ccccc1").key;
    assert_eq!(scaffold("CC(=O)Oc1ccccc1C(=O)O").key, benzene);
    assert_eq!(scaffold("Cc1ccccc1").atoms.len(), 6);
    let biphenyl = scaffold("c1ccccc1-c1ccccc1");
    assert_ne!(biphenyl.key, benzene);
    let linked = scaffold("CCc1ccc(Cc2ccccc2)cc1");
    assert_eq!(linked.atoms.len(), 13);
    assert_eq!(linked.key, scaffold("c1ccc(Cc2ccccc2)cc1").key);
    // The ring carbonyl stays; the ring-less molecule has none.
    assert_eq!(scaffold("O=C1CCCCC1CC").atoms.len(), 7);
    assert_eq!(scaffold("CCO"), ferrochem_chem::Scaffold { atoms: vec![], key: 0 });
    // Atom order does not change the key.
    assert_eq!(scaffold("C1CCC(CC1)c1ccncc1").key, scaffold("c1cc(ccn1)C1CCCCC1").key);
    // An atom double-bonded to the core stays whatever else it carries: the
    // exocyclic carbon of an alkylidene, without its alkyl groups.
    assert_eq!(scaffold("CCC(CC)=C1CCC(=O)CC1").atoms.len(), 8);
    assert_eq!(scaffold("CC(C)=C1CCCC1").atoms.len(), 6);
    assert_ne!(scaffold("CC(C)=C1CCCC1").key, scaffold("C1CCCC1").key);
    // A pyrrole nitrogen that lost its substituent shows a hydrogen, as RDKit
    // writes it, so N-methylpyrrole and pyrrole share a scaffold, and furan
    // has another.
    assert_eq!(scaffold("Cn1cccc1").key, scaffold("c1cc[nH]c1").key);
    assert_ne!(scaffold("c1ccoc1").key, scaffold("c1cc[nH]c1").key);
    // Two separate rings are not one large ring, and the ring sizes count.
    assert_ne!(scaffold("C1CCCCC1.C1CCCCC1").key, scaffold("C1CCCCCCCCCCC1").key);
    assert_ne!(scaffold("C1CCCCC1").key, scaffold("C1CCCCCC1").key);
}

/// Our scaffolds group the Tox21 molecules exactly as RDKit's scaffold
/// SMILES do, so a scaffold split puts each molecule where DeepChem's
/// `ScaffoldSplitter` would.
#[test]
fn every_tox21_scaffold_groups_as_rdkit() {
    use std::collections::HashMap;
    let mut key_of: HashMap<String, u64> = HashMap::new();
    let mut smiles_of: HashMap<u64, String> = HashMap::new();
    let mut checked = 0;
    for record in rdkit_reference() {
        let Ok(molecule) = Molecule::from_smiles(&record[1]) else { continue };
        let (rdkit, ours) = (&record[5], ferrochem_chem::murcko_scaffold(&molecule).key);
        assert_eq!(rdkit.is_empty(), ours == 0, "{}: scaffold {rdkit:?}", &record[1]);
        let seen_key = *key_of.entry(rdkit.to_owned()).or_insert(ours);
        let seen_smiles = smiles_of.entry(ours).or_insert_with(|| rdkit.to_owned());
        assert_eq!(seen_key, ours, "{}: RDKit's {rdkit} split in two", &record[1]);
        assert_eq!(seen_smiles, rdkit, "{}: {rdkit} and {seen_smiles} merged", &record[1]);
        checked += 1;
    }
    assert_eq!(checked, 7823);
    assert_eq!(key_of.len(), 2325);
}

#[test]
fn large_inputs_stay_fast() {
    // A long aromatic chain is settled by forced choices, and many ring
    // closures do not make ring bonds quadratic.
    let chain = format!("C{}C", "c".repeat(20_000));
    let _ = Molecule::from_smiles(&chain);
    let closures: String = (0..20_000).map(|i| format!("C{}", i % 10)).collect();
    let _ = Molecule::from_smiles(&closures);
    let fused = "c1ccc2cc3cc4cc5ccccc5cc4cc3cc2c1";
    assert!(Molecule::from_smiles(fused).is_ok());
}
