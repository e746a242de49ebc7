//! English function words the scorer needs to read speech. These describe the language,
//! not an interview, so they live here rather than in a guide file.

/// Hesitations Whisper transcribes; dropped so they do not split a phrase.
pub const FILLERS: &[&str] = &["um", "umm", "uh", "uhh", "uhm", "erm", "er", "hmm", "mm", "ah"];

/// Words that start a new clause. Negation does not reach across them: in "we had no
/// alerts so we added alerting" the "no" says nothing about the added alerting.
pub const CLAUSE_STARTS: &[&str] = &[
    "but",
    "so",
    "then",
    "because",
    "until",
    "although",
    "though",
    "however",
    "which",
    "after",
    "afterwards",
    "before",
    "when",
    "once",
    "whereas",
    "otherwise",
];

/// Words that deny what follows them in the same clause ("nobody had validated the input").
/// Any word ending in "n't" counts too; these are the rest, including the apostrophe-less
/// contractions Whisper sometimes writes.
pub const NEGATIONS: &[&str] = &[
    "not", "no", "never", "without", "nobody", "none", "nothing", "neither", "nor", "cannot", "lack", "lacked",
    "lacking", "forgot", "instead", "rather", "didnt", "dont", "doesnt", "wasnt", "werent", "isnt", "arent", "havent",
    "hasnt", "hadnt", "couldnt", "wouldnt", "shouldnt", "wont", "cant",
];

/// A negation followed by one of these is an idiom, not a denial ("not only", "no longer").
pub const NEGATION_IDIOM_ENDS: &[&str] = &["only", "just", "longer", "matter", "doubt", "sooner"];

/// Auxiliaries that may sit between a thing and its later denial ("alerts were never set up").
pub const AUXILIARIES: &[&str] = &["was", "were", "is", "are", "had", "has", "have", "been", "did", "got"];

pub fn is_negation(word: &str) -> bool {
    word.ends_with("n't") || NEGATIONS.contains(&word)
}
