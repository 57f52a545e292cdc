//! Vocabularies for ids and categorical values, fitted on training rows. Index 0 is reserved for
//! values that are unknown or too rare, so an unseen user or video still gets a prediction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub const OOV_INDEX: u32 = 0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "VocabularyRecord", into = "VocabularyRecord")]
pub struct Vocabulary {
    /// Token of index i+1.
    tokens: Vec<String>,
    index: HashMap<String, u32>,
    min_count: u32,
}

#[derive(Serialize, Deserialize)]
struct VocabularyRecord {
    min_count: u32,
    /// Index i+1 for the i-th token; 0 is out-of-vocabulary.
    tokens: Vec<String>,
}

impl From<VocabularyRecord> for Vocabulary {
    fn from(record: VocabularyRecord) -> Self {
        Self::from_tokens(record.tokens, record.min_count)
    }
}

impl From<Vocabulary> for VocabularyRecord {
    fn from(vocabulary: Vocabulary) -> Self {
        Self { min_count: vocabulary.min_count, tokens: vocabulary.tokens }
    }
}

impl Vocabulary {
    /// Keeps tokens counted at least `min_count` times, most frequent first (ties by token, so
    /// the result does not depend on hash order).
    pub fn fit<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>, min_count: u32) -> Self {
        let mut kept: Vec<(&str, u64)> =
            counts.into_iter().filter(|&(_, n)| n >= u64::from(min_count.max(1))).collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        Self::from_tokens(kept.into_iter().map(|(t, _)| t.to_owned()).collect(), min_count)
    }

    fn from_tokens(tokens: Vec<String>, min_count: u32) -> Self {
        let index = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32 + 1)).collect();
        Self { tokens, index, min_count }
    }

    /// The token's index, or `OOV_INDEX`.
    pub fn index(&self, token: &str) -> u32 {
        self.index.get(token).copied().unwrap_or(OOV_INDEX)
    }

    /// Number of indices, the out-of-vocabulary one included: the embedding table's size.
    pub fn cardinality(&self) -> usize {
        self.tokens.len() + 1
    }

    pub fn token(&self, index: u32) -> Option<&str> {
        index.checked_sub(1).and_then(|i| self.tokens.get(i as usize)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_and_unseen_tokens_map_to_the_reserved_index() {
        let vocab = Vocabulary::fit([("a", 5), ("b", 1), ("c", 3)], 2);
        assert_eq!(vocab.index("a"), 1);
        assert_eq!(vocab.index("c"), 2);
        assert_eq!(vocab.index("b"), OOV_INDEX);
        assert_eq!(vocab.index("never"), OOV_INDEX);
        assert_eq!(vocab.cardinality(), 3);
        let reloaded: Vocabulary =
            serde_json::from_str(&serde_json::to_string(&vocab).unwrap()).unwrap();
        assert_eq!(reloaded, vocab);
    }
}
