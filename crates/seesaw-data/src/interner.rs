//! Raw ids and categorical values as they appear in the files, mapped to dense indices in order
//! of first appearance. Vocabularies (fitted on training rows only) are built on top of these.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct Interner {
    index: HashMap<Box<str>, u32>,
    tokens: Vec<Box<str>>,
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.index.get(token) {
            return id;
        }
        let id = self.tokens.len() as u32;
        let token: Box<str> = token.into();
        self.tokens.push(token.clone());
        self.index.insert(token, id);
        id
    }

    pub fn get(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    pub fn token(&self, id: u32) -> &str {
        &self.tokens[id as usize]
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|t| &**t)
    }
}

impl From<Vec<String>> for Interner {
    fn from(tokens: Vec<String>) -> Self {
        let mut interner = Interner::new();
        for token in tokens {
            interner.intern(&token);
        }
        interner
    }
}

impl From<Interner> for Vec<String> {
    fn from(interner: Interner) -> Self {
        interner.tokens.into_iter().map(String::from).collect()
    }
}
