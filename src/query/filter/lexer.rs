//! The query language's tokens: keywords, dotted identifiers, numbers, strings and operators,
//! each with the character span it came from so that an error can point at it.

use crate::value::Value;

use super::ast::CompareOp;
use super::hint::snippet;
use super::FilterError;

/// A reserved word, recognized in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    And,
    Or,
    Not,
    Like,
    Ilike,
    In,
    Is,
    Null,
    True,
    False,
    Order,
    By,
    Asc,
    Desc,
    Limit,
    Offset,
}

impl Keyword {
    const ALL: [Keyword; 16] = [
        Keyword::And,
        Keyword::Or,
        Keyword::Not,
        Keyword::Like,
        Keyword::Ilike,
        Keyword::In,
        Keyword::Is,
        Keyword::Null,
        Keyword::True,
        Keyword::False,
        Keyword::Order,
        Keyword::By,
        Keyword::Asc,
        Keyword::Desc,
        Keyword::Limit,
        Keyword::Offset,
    ];

    fn text(self) -> &'static str {
        match self {
            Keyword::And => "AND",
            Keyword::Or => "OR",
            Keyword::Not => "NOT",
            Keyword::Like => "LIKE",
            Keyword::Ilike => "ILIKE",
            Keyword::In => "IN",
            Keyword::Is => "IS",
            Keyword::Null => "NULL",
            Keyword::True => "TRUE",
            Keyword::False => "FALSE",
            Keyword::Order => "ORDER",
            Keyword::By => "BY",
            Keyword::Asc => "ASC",
            Keyword::Desc => "DESC",
            Keyword::Limit => "LIMIT",
            Keyword::Offset => "OFFSET",
        }
    }

    pub(super) fn from_word(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|keyword| keyword.text().eq_ignore_ascii_case(word))
    }
}

/// One part of a dotted identifier.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Part {
    pub(super) text: String,
    /// Written in backticks or double quotes.
    pub(super) quoted: bool,
    /// Char index where it starts (at its opening quote, if quoted).
    pub(super) start: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    /// A dotted identifier that is not a keyword.
    Path(Vec<Part>),
    Keyword(Keyword),
    Number(Value),
    Str {
        text: String,
        double_quoted: bool,
    },
    Op(CompareOp),
    LeftParen,
    RightParen,
    Comma,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    /// Char index of the first character.
    pub(super) start: usize,
    /// Char index one past the last character.
    pub(super) end: usize,
}

pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub(super) struct Lexer<'a> {
    pub(super) chars: &'a [char],
    pub(super) pos: usize,
}

impl Lexer<'_> {
    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn error(&self, start: usize, message: String) -> FilterError {
        FilterError {
            message,
            column: start + 1,
        }
    }

    pub(super) fn tokens(mut self) -> Result<Vec<Token>, FilterError> {
        let mut tokens = Vec::new();
        loop {
            while self.peek_at(0).is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
            let start = self.pos;
            let Some(c) = self.peek_at(0) else {
                tokens.push(Token {
                    kind: TokenKind::End,
                    start,
                    end: start,
                });
                return Ok(tokens);
            };
            let next = self.peek_at(1);
            let (kind, length) = match (c, next) {
                ('(', _) => (TokenKind::LeftParen, 1),
                (')', _) => (TokenKind::RightParen, 1),
                (',', _) => (TokenKind::Comma, 1),
                ('=', Some('=')) => (TokenKind::Op(CompareOp::Eq), 2),
                ('=', _) => (TokenKind::Op(CompareOp::Eq), 1),
                ('!', Some('=')) | ('<', Some('>')) => (TokenKind::Op(CompareOp::Ne), 2),
                ('<', Some('=')) => (TokenKind::Op(CompareOp::Le), 2),
                ('<', _) => (TokenKind::Op(CompareOp::Lt), 1),
                ('>', Some('=')) => (TokenKind::Op(CompareOp::Ge), 2),
                ('>', _) => (TokenKind::Op(CompareOp::Gt), 1),
                ('\'' | '"', _) => {
                    let text = self.quoted(c, "unterminated string")?;
                    let kind = TokenKind::Str {
                        text,
                        double_quoted: c == '"',
                    };
                    tokens.push(Token {
                        kind,
                        start,
                        end: self.pos,
                    });
                    continue;
                }
                _ if self.at_number() => {
                    let kind = self.number()?;
                    tokens.push(Token {
                        kind,
                        start,
                        end: self.pos,
                    });
                    continue;
                }
                _ if c == '`' || (is_word_char(c) && !c.is_ascii_digit()) => {
                    let kind = self.path()?;
                    tokens.push(Token {
                        kind,
                        start,
                        end: self.pos,
                    });
                    continue;
                }
                ('!', _) => {
                    return Err(self.error(
                        start,
                        "unexpected character '!' (use NOT, or != for not equal)".to_owned(),
                    ))
                }
                _ => return Err(self.error(start, format!("unexpected character '{c}'"))),
            };
            self.pos += length;
            tokens.push(Token {
                kind,
                start,
                end: self.pos,
            });
        }
    }

    /// Reads a quoted run of characters starting at the opening `quote`; a doubled quote
    /// stands for one quote character.
    fn quoted(&mut self, quote: char, unterminated: &str) -> Result<String, FilterError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek_at(0) {
                None => return Err(self.error(start, unterminated.to_owned())),
                Some(c) if c == quote => {
                    if self.peek_at(1) == Some(quote) {
                        text.push(quote);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(text);
                    }
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn at_number(&self) -> bool {
        let digit = |offset| self.peek_at(offset).is_some_and(|c| c.is_ascii_digit());
        match self.peek_at(0) {
            Some(c) if c.is_ascii_digit() => true,
            Some('.') => digit(1),
            Some('-') => digit(1) || (self.peek_at(1) == Some('.') && digit(2)),
            _ => false,
        }
    }

    fn number(&mut self) -> Result<TokenKind, FilterError> {
        let start = self.pos;
        let digits = |lexer: &mut Self| {
            let from = lexer.pos;
            while lexer.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
                lexer.pos += 1;
            }
            lexer.pos > from
        };
        let mut is_float = false;
        if self.peek_at(0) == Some('-') {
            self.pos += 1;
        }
        digits(self);
        if self.peek_at(0) == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            self.pos += 1;
            digits(self);
        }
        if matches!(self.peek_at(0), Some('e' | 'E')) {
            let after_sign = match self.peek_at(1) {
                Some('+' | '-') => 2,
                _ => 1,
            };
            if self.peek_at(after_sign).is_some_and(|c| c.is_ascii_digit()) {
                is_float = true;
                self.pos += after_sign;
                digits(self);
            }
        }
        // Letters, digits or dots glued to the number make it something else, say `1abc` or
        // `1.2.3`; take them so that the error shows the whole of it.
        let mut invalid = false;
        while self.peek_at(0).is_some_and(|c| is_word_char(c) || c == '.') {
            invalid = true;
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if invalid {
            return Err(self.error(start, format!("invalid number '{}'", snippet(&text))));
        }
        if !is_float {
            if let Ok(int) = text.parse::<i64>() {
                return Ok(TokenKind::Number(Value::Int(int)));
            }
        }
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => Ok(TokenKind::Number(Value::Float(float))),
            _ => Err(self.error(
                start,
                format!("number '{}' is out of range", snippet(&text)),
            )),
        }
    }

    /// Reads a dotted identifier, or a keyword.
    fn path(&mut self) -> Result<TokenKind, FilterError> {
        let mut parts = vec![self.part(false)?];
        while self.peek_at(0) == Some('.') {
            let after = self.pos + 1;
            match self.peek_at(1) {
                Some(c) if c == '`' || c == '"' || is_word_char(c) => {
                    self.pos += 1;
                    parts.push(self.part(true)?);
                }
                _ => {
                    return Err(self.error(after, "expected a name after '.'".to_owned()));
                }
            }
        }
        if let [part] = parts.as_slice() {
            if !part.quoted {
                if let Some(keyword) = Keyword::from_word(&part.text) {
                    return Ok(TokenKind::Keyword(keyword));
                }
            }
        }
        Ok(TokenKind::Path(parts))
    }

    /// Reads one part of an identifier; only parts after a dot may be double-quoted.
    fn part(&mut self, after_dot: bool) -> Result<Part, FilterError> {
        let start = self.pos;
        match self.peek_at(0) {
            Some(quote @ ('`' | '"')) if quote == '`' || after_dot => {
                let text = self.quoted(quote, "unterminated quoted name")?;
                Ok(Part {
                    text,
                    quoted: true,
                    start,
                })
            }
            _ => {
                while self.peek_at(0).is_some_and(is_word_char) {
                    self.pos += 1;
                }
                Ok(Part {
                    text: self.chars[start..self.pos].iter().collect(),
                    quoted: false,
                    start,
                })
            }
        }
    }
}
