//! File extension to `Content-Type`.
//!
//! The table covers nginx's `mime.types` plus current web formats. Where the
//! two disagree the modern registration wins (e.g. `text/javascript` per
//! RFC 9239, `audio/mp4` for `.m4a`, `application/xml` for `.xml`).
//! Textual types carry `; charset=utf-8` so browsers never have to sniff.

const OCTET_STREAM: &str = "application/octet-stream";

/// Longest extension looked up; longer ones cannot be in the table.
const MAX_EXT: usize = 16;

/// Content type for a path, by the extension of its last segment
/// (case-insensitive). Dotfiles such as `.bashrc` have no extension.
pub fn content_type(path: &[u8]) -> &'static str {
    let name = match memchr::memrchr(b'/', path) {
        Some(i) => path.get(i + 1..).unwrap_or_default(),
        None => path,
    };
    let ext = match memchr::memrchr(b'.', name) {
        Some(0) | None => return OCTET_STREAM,
        Some(i) => name.get(i + 1..).unwrap_or_default(),
    };
    if ext.is_empty() || ext.len() > MAX_EXT {
        return OCTET_STREAM;
    }
    let mut buf = [0u8; MAX_EXT];
    let lower = match buf.get_mut(..ext.len()) {
        Some(dst) => dst,
        None => return OCTET_STREAM,
    };
    for (d, s) in lower.iter_mut().zip(ext) {
        *d = s.to_ascii_lowercase();
    }
    by_extension(lower)
}

/// Whether a type is worth a content coding: text and text-like formats (markup, scripts, data,
/// SVG, WebAssembly, uncompressed fonts and icons). Formats that are compressed already
/// (images, audio, video, archives, WOFF/WOFF2 fonts, PDF) gain nothing and are left alone.
/// The list is README's "Serving a site" list; keep them equal.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || essence.ends_with("+xml")
        || essence.ends_with("+json")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/toml"
                | "application/yaml"
                | "application/x-subrip"
                | "application/x-perl"
                | "application/x-tcl"
                | "application/postscript"
                | "application/rtf"
                | "application/vnd.apple.mpegurl"
                | "application/vnd.ms-fontobject"
                | "font/ttf"
                | "font/otf"
                | "font/collection"
                | "image/x-icon"
                | "image/bmp"
        )
}

/// Lookup of an already lowercased extension. A `match` on byte strings
/// compiles to a length-then-bytes decision tree: no hashing, no allocation.
fn by_extension(ext: &[u8]) -> &'static str {
    match ext {
        // Text and markup.
        b"html" | b"htm" | b"shtml" => "text/html; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"js" | b"mjs" | b"cjs" => "text/javascript; charset=utf-8",
        b"txt" | b"text" | b"log" | b"conf" | b"asc" => "text/plain; charset=utf-8",
        b"md" | b"markdown" => "text/markdown; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"tsv" => "text/tab-separated-values; charset=utf-8",
        b"ics" | b"ifb" => "text/calendar; charset=utf-8",
        b"vcf" | b"vcard" => "text/vcard; charset=utf-8",
        b"vtt" => "text/vtt; charset=utf-8",
        b"mml" => "text/mathml; charset=utf-8",
        b"jad" => "text/vnd.sun.j2me.app-descriptor; charset=utf-8",
        b"wml" => "text/vnd.wap.wml; charset=utf-8",
        b"htc" => "text/x-component; charset=utf-8",
        b"xml" | b"xsd" | b"rng" => "application/xml; charset=utf-8",
        b"xsl" | b"xslt" => "application/xslt+xml; charset=utf-8",
        b"xhtml" | b"xht" => "application/xhtml+xml; charset=utf-8",
        b"atom" => "application/atom+xml; charset=utf-8",
        b"rss" => "application/rss+xml; charset=utf-8",
        b"xspf" => "application/xspf+xml; charset=utf-8",
        b"json" | b"map" => "application/json; charset=utf-8",
        b"jsonld" => "application/ld+json; charset=utf-8",
        b"geojson" => "application/geo+json; charset=utf-8",
        b"webmanifest" => "application/manifest+json; charset=utf-8",
        b"yaml" | b"yml" => "application/yaml; charset=utf-8",
        b"toml" => "application/toml; charset=utf-8",
        b"srt" => "application/x-subrip; charset=utf-8",

        // Images.
        b"gif" => "image/gif",
        b"jpeg" | b"jpg" | b"jpe" | b"jfif" | b"pjpeg" | b"pjp" => "image/jpeg",
        b"png" => "image/png",
        b"apng" => "image/apng",
        b"avif" => "image/avif",
        b"webp" => "image/webp",
        b"jxl" => "image/jxl",
        b"heic" => "image/heic",
        b"heif" => "image/heif",
        b"svg" | b"svgz" => "image/svg+xml; charset=utf-8",
        b"tif" | b"tiff" => "image/tiff",
        b"wbmp" => "image/vnd.wap.wbmp",
        b"ico" | b"cur" => "image/x-icon",
        b"jng" => "image/x-jng",
        b"bmp" => "image/bmp",
        b"psd" => "image/vnd.adobe.photoshop",

        // Fonts.
        b"woff" => "font/woff",
        b"woff2" => "font/woff2",
        b"otf" => "font/otf",
        b"ttf" => "font/ttf",
        b"ttc" => "font/collection",
        b"eot" => "application/vnd.ms-fontobject",

        // Audio.
        b"mid" | b"midi" | b"kar" => "audio/midi",
        b"mp3" => "audio/mpeg",
        b"ogg" | b"oga" | b"opus" | b"spx" => "audio/ogg",
        b"m4a" => "audio/mp4",
        b"aac" => "audio/aac",
        b"flac" => "audio/flac",
        b"wav" => "audio/wav",
        b"weba" => "audio/webm",
        b"mka" => "audio/x-matroska",
        b"ra" => "audio/x-realaudio",

        // Video.
        b"3gpp" | b"3gp" => "video/3gpp",
        b"3g2" => "video/3gpp2",
        b"ts" | b"m2ts" | b"mts" => "video/mp2t",
        b"mp4" | b"m4v" => "video/mp4",
        b"mpeg" | b"mpg" => "video/mpeg",
        b"mov" => "video/quicktime",
        b"webm" => "video/webm",
        b"ogv" => "video/ogg",
        b"mkv" => "video/x-matroska",
        b"flv" => "video/x-flv",
        b"mng" => "video/x-mng",
        b"asx" | b"asf" => "video/x-ms-asf",
        b"wmv" => "video/x-ms-wmv",
        b"avi" => "video/x-msvideo",

        // Streaming manifests.
        b"m3u8" => "application/vnd.apple.mpegurl",
        b"mpd" => "application/dash+xml",

        // Documents.
        b"pdf" => "application/pdf",
        b"epub" => "application/epub+zip",
        b"rtf" => "application/rtf",
        b"doc" => "application/msword",
        b"xls" => "application/vnd.ms-excel",
        b"ppt" => "application/vnd.ms-powerpoint",
        b"docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        b"odg" => "application/vnd.oasis.opendocument.graphics",
        b"odp" => "application/vnd.oasis.opendocument.presentation",
        b"ods" => "application/vnd.oasis.opendocument.spreadsheet",
        b"odt" => "application/vnd.oasis.opendocument.text",
        b"ps" | b"eps" | b"ai" => "application/postscript",
        b"kml" => "application/vnd.google-earth.kml+xml",
        b"kmz" => "application/vnd.google-earth.kmz",
        b"wmlc" => "application/vnd.wap.wmlc",

        // Archives and compressed files (served as themselves, not as a
        // Content-Encoding of something else).
        b"zip" => "application/zip",
        b"gz" | b"tgz" => "application/gzip",
        b"zst" => "application/zstd",
        b"bz2" => "application/x-bzip2",
        b"xz" => "application/x-xz",
        b"tar" => "application/x-tar",
        b"7z" => "application/x-7z-compressed",
        b"rar" => "application/vnd.rar",
        b"jar" | b"war" | b"ear" => "application/java-archive",
        b"rpm" => "application/x-redhat-package-manager",
        b"hqx" => "application/mac-binhex40",
        b"sit" => "application/x-stuffit",
        b"sea" => "application/x-sea",
        b"xpi" => "application/x-xpinstall",

        // Code and executables.
        b"wasm" => "application/wasm",
        b"swf" => "application/x-shockwave-flash",
        b"cco" => "application/x-cocoa",
        b"jardiff" => "application/x-java-archive-diff",
        b"jnlp" => "application/x-java-jnlp-file",
        b"run" => "application/x-makeself",
        b"pl" | b"pm" => "application/x-perl",
        b"prc" | b"pdb" => "application/x-pilot",
        b"tcl" | b"tk" => "application/x-tcl",
        b"der" | b"pem" | b"crt" => "application/x-x509-ca-cert",
        b"bin" | b"exe" | b"dll" | b"deb" | b"dmg" | b"iso" | b"img" | b"msi" | b"msp" | b"msm" => {
            OCTET_STREAM
        }

        _ => OCTET_STREAM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types() {
        assert_eq!(content_type(b"/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"/a/b/style.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type(b"/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type(b"/mod.MJS"), "text/javascript; charset=utf-8");
        assert_eq!(
            content_type(b"/data.json"),
            "application/json; charset=utf-8"
        );
        assert_eq!(
            content_type(b"/x.js.map"),
            "application/json; charset=utf-8"
        );
        assert_eq!(
            content_type(b"/site.webmanifest"),
            "application/manifest+json; charset=utf-8"
        );
        assert_eq!(content_type(b"/img.svg"), "image/svg+xml; charset=utf-8");
        assert_eq!(content_type(b"/img.webp"), "image/webp");
        assert_eq!(content_type(b"/img.JPG"), "image/jpeg");
        assert_eq!(content_type(b"/f.woff2"), "font/woff2");
        assert_eq!(content_type(b"/m.wasm"), "application/wasm");
        assert_eq!(content_type(b"/README.md"), "text/markdown; charset=utf-8");
        assert_eq!(content_type(b"/v.mp4"), "video/mp4");
        assert_eq!(content_type(b"/a.tar.gz"), "application/gzip");
        assert_eq!(content_type(b"/a.zst"), "application/zstd");
        assert_eq!(content_type(b"/a.7z"), "application/x-7z-compressed");
        assert_eq!(
            content_type(b"/feed.rss"),
            "application/rss+xml; charset=utf-8"
        );
        assert_eq!(
            content_type(b"/feed.atom"),
            "application/atom+xml; charset=utf-8"
        );
        assert_eq!(
            content_type(b"/p.xhtml"),
            "application/xhtml+xml; charset=utf-8"
        );
        assert_eq!(content_type(b"/s.xml"), "application/xml; charset=utf-8");
        assert_eq!(content_type(b"/a.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type(b"relative.pdf"), "application/pdf");
    }

    #[test]
    fn no_extension_or_unknown() {
        for p in [
            &b""[..],
            b"/",
            b"/Makefile",
            b"/.bashrc",
            b"/dir/.htaccess",
            b"/file.",
            b"/a.b/noext",
            b"/x.unknownext",
            b"/x.abcdefghijklmnopq",
            b"/x.\xff\xfe",
            b"/x.HTML\xff",
            b".",
            b"..",
            b"/.",
        ] {
            assert_eq!(
                content_type(p),
                OCTET_STREAM,
                "{:?}",
                String::from_utf8_lossy(p)
            );
        }
        // A leading dot plus a real extension still has one.
        assert_eq!(
            content_type(b"/.eslintrc.json"),
            "application/json; charset=utf-8"
        );
        assert_eq!(content_type(b"/..html"), "text/html; charset=utf-8");
    }

    #[test]
    fn extension_length_boundary() {
        assert_eq!(
            content_type(b"/a.webmanifest"),
            "application/manifest+json; charset=utf-8"
        );
        // 16 bytes is looked up (and unknown); 17 is skipped without lookup.
        assert_eq!(content_type(b"/a.abcdefghijklmnop"), OCTET_STREAM);
        assert_eq!(content_type(b"/a.abcdefghijklmnopq"), OCTET_STREAM);
    }

    #[test]
    fn compressible_types() {
        for p in [
            "a.html",
            "a.css",
            "a.js",
            "a.mjs",
            "a.json",
            "a.svg",
            "a.xml",
            "a.wasm",
            "a.txt",
            "a.ttf",
            "a.otf",
            "a.ico",
            "a.webmanifest",
            "a.atom",
            "a.md",
        ] {
            assert!(is_compressible(content_type(p.as_bytes())), "{p}");
        }
        for p in [
            "a.png", "a.jpg", "a.woff2", "a.woff", "a.gz", "a.br", "a.zst", "a.zip", "a.mp4",
            "a.pdf", "a.bin", "noext",
        ] {
            assert!(!is_compressible(content_type(p.as_bytes())), "{p}");
        }
    }

    #[test]
    fn textual_types_carry_charset() {
        let exts: [&[u8]; 15] = [
            b"html",
            b"css",
            b"js",
            b"txt",
            b"md",
            b"csv",
            b"ics",
            b"xml",
            b"json",
            b"svg",
            b"xhtml",
            b"rss",
            b"atom",
            b"webmanifest",
            b"mjs",
        ];
        for e in exts {
            assert!(by_extension(e).ends_with("; charset=utf-8"), "{:?}", e);
        }
        for e in [&b"png"[..], b"mp4", b"woff2", b"pdf", b"gz"] {
            assert!(!by_extension(e).contains("charset"));
        }
    }
}
