//! The report page as a list of blocks, rendered twice from the same content: a
//! self-contained index.html (inline style, relative links, no scripts, nothing
//! fetched) and a report.md for viewing in a repository.

use crate::tables::Grid;

#[derive(Debug, Clone)]
pub enum Block {
    Heading(String),
    Text(String),
    /// The at-a-glance box: `good` says whether the defense held.
    Verdict {
        good: bool,
        headline: String,
        lines: Vec<String>,
    },
    Warning(Vec<String>),
    KeyValues(Vec<(String, String)>),
    /// A display table with the CSV that holds its full-precision numbers.
    Table {
        title: String,
        grid: Grid,
        csv: String,
        caption: String,
    },
    Figure {
        file: String,
        title: String,
        caption: String,
    },
    Links(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
pub struct Page {
    pub title: String,
    pub blocks: Vec<Block>,
}

const STYLE: &str = "
* { box-sizing: border-box; }
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1320px; padding: 12px 28px 60px; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 1.8em; }
h3 { margin-bottom: 0.3em; }
.verdict { border-left: 10px solid; padding: 10px 18px; margin: 16px 0; font-size: 1.05em; }
.verdict.good { border-color: #2ca02c; background: #eef8ee; }
.verdict.bad { border-color: #d62728; background: #fbeeee; }
.verdict .headline { font-size: 1.3em; font-weight: bold; margin: 4px 0 8px; }
.warning { border-left: 10px solid #e69500; background: #fff6e0; padding: 8px 18px; margin: 14px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.95em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
td.yes { background: #dff2df; color: #1d6b1d; font-weight: bold; text-align: center; }
td.no { background: #f8dede; color: #a31d1d; font-weight: bold; text-align: center; }
table.kv td { text-align: left; vertical-align: top; }
table.kv td:first-child { font-weight: bold; white-space: nowrap; }
figure { margin: 14px 0 26px; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .caption { color: #444; font-style: italic; margin-top: 4px; }
";

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Page {
    pub fn html(&self) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        );
        for block in &self.blocks {
            out += &block_html(block);
        }
        out + "</body>\n</html>\n"
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title);
        for block in &self.blocks {
            out += &block_markdown(block);
        }
        out
    }

    /// Every file the page links to, relative to the page.
    pub fn files(&self) -> Vec<String> {
        let mut files = Vec::new();
        for block in &self.blocks {
            match block {
                Block::Table { csv, .. } => files.push(csv.clone()),
                Block::Figure { file, .. } => files.push(file.clone()),
                Block::Links(links) => files.extend(links.iter().map(|(f, _)| f.clone())),
                _ => {}
            }
        }
        files
    }
}

fn grid_html(grid: &Grid) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in &grid.header {
        out += &format!("<th>{}</th>", escape(h));
    }
    out += "</tr>\n";
    for row in &grid.rows {
        out += "<tr>";
        for cell in row {
            // The within-std verdicts stand out by colour, so a mismatch is seen at once.
            let class = match cell.as_str() {
                "yes" => " class=\"yes\"",
                "no" => " class=\"no\"",
                _ => "",
            };
            out += &format!("<td{class}>{}</td>", escape(cell));
        }
        out += "</tr>\n";
    }
    out + "</table>\n"
}

fn block_html(block: &Block) -> String {
    match block {
        Block::Heading(h) => format!("<h2>{}</h2>\n", escape(h)),
        Block::Text(t) => format!("<p>{}</p>\n", escape(t)),
        Block::Verdict { good, headline, lines } => {
            let items: String = lines.iter().map(|l| format!("<li>{}</li>\n", escape(l))).collect();
            format!(
                "<div class=\"verdict {}\">\n<div class=\"headline\">{}</div>\n<ul>\n{items}</ul>\n</div>\n",
                if *good { "good" } else { "bad" },
                escape(headline)
            )
        }
        Block::Warning(lines) => {
            let items: String = lines.iter().map(|l| format!("<li>{}</li>\n", escape(l))).collect();
            format!("<div class=\"warning\"><ul>\n{items}</ul></div>\n")
        }
        Block::KeyValues(kv) => {
            let rows: String =
                kv.iter().map(|(k, v)| format!("<tr><td>{}</td><td>{}</td></tr>\n", escape(k), escape(v))).collect();
            format!("<table class=\"kv\">\n{rows}</table>\n")
        }
        Block::Table { title, grid, csv, caption } => format!(
            "<h3>{}</h3>\n{}<div class=\"caption\">{} <a href=\"{}\">CSV</a></div>\n",
            escape(title),
            grid_html(grid),
            escape(caption),
            escape(csv)
        ),
        Block::Figure { file, title, caption } => format!(
            "<figure>\n<h3>{}</h3>\n<img src=\"{}\" alt=\"{}\">\n<figcaption>{}</figcaption>\n</figure>\n",
            escape(title),
            escape(file),
            escape(title),
            escape(caption)
        ),
        Block::Links(links) => {
            let items: String =
                links.iter().map(|(f, d)| format!("<li><a href=\"{}\">{}</a>: {}</li>\n", escape(f), escape(f), escape(d))).collect();
            format!("<ul>\n{items}</ul>\n")
        }
    }
}

fn block_markdown(block: &Block) -> String {
    match block {
        Block::Heading(h) => format!("## {h}\n\n"),
        Block::Text(t) => format!("{t}\n\n"),
        Block::Verdict {
            good,
            headline,
            lines,
        } => {
            let mark = if *good { "✅" } else { "❌" };
            let items: String = lines.iter().map(|l| format!("> - {l}\n")).collect();
            format!("> {mark} **{headline}**\n>\n{items}\n")
        }
        Block::Warning(lines) => {
            let items: String = lines.iter().map(|l| format!("> - {l}\n")).collect();
            format!("> ⚠️ **Warning**\n>\n{items}\n")
        }
        Block::KeyValues(kv) => {
            let rows: String = kv
                .iter()
                .map(|(k, v)| format!("| {} | {} |\n", k, v.replace('|', "\\|")))
                .collect();
            format!("| setting | value |\n|---|---|\n{rows}\n")
        }
        Block::Table {
            title,
            grid,
            csv,
            caption,
        } => {
            format!(
                "### {title}\n\n{}\n*{caption}* ([CSV]({csv}))\n\n",
                grid.to_markdown()
            )
        }
        Block::Figure {
            file,
            title,
            caption,
        } => format!("### {title}\n\n![{title}]({file})\n\n*{caption}*\n\n"),
        Block::Links(links) => {
            links
                .iter()
                .map(|(f, d)| format!("- [{f}]({f}): {d}\n"))
                .collect::<String>()
                + "\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_lists_files() {
        let page = Page {
            title: "a < b".into(),
            blocks: vec![
                Block::Figure {
                    file: "figures/x.png".into(),
                    title: "X".into(),
                    caption: "look".into(),
                },
                Block::Links(vec![("tables/t.csv".into(), "numbers".into())]),
            ],
        };
        assert!(page.html().contains("<h1>a &lt; b</h1>"));
        assert_eq!(page.files(), vec!["figures/x.png", "tables/t.csv"]);
        assert!(page.markdown().contains("![X](figures/x.png)"));
    }
}
