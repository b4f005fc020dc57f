// formiga tokenize -m MODEL [--text T | -f FILE] [--json] [--no-bos] [--parse-special]
//
// Prints the token ids of a text and the piece each stands for. MODEL is a
// GGUF file, a tokenizer.json, or a directory holding a tokenizer.json;
// without -m, DefaultModelPath(). Without --text/-f the text is read from
// stdin.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace formiga::cli {
namespace {

namespace fs = std::filesystem;

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  bool json = false;
  bool no_bos = false;
  bool parse_special = false;
};

Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model) {
  std::error_code ec;
  if (fs::is_directory(model, ec)) return Tokenizer::FromHfJsonFile((fs::path(model) / "tokenizer.json").string());
  if (fs::path(model).extension() == ".json") return Tokenizer::FromHfJsonFile(model);
  FORMIGA_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::Open(model));
  return Tokenizer::FromGguf(gguf);
}

// A piece as a readable, quotable string: printable UTF-8 stays, control
// characters and bytes of incomplete characters become escapes.
std::string Escape(const std::string& piece) {
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    size_t n = ValidUtf8SequenceLength(piece, i);
    unsigned char c = static_cast<unsigned char>(piece[i]);
    if (n == 1) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\\': out += "\\\\"; break;
        case '\'': out += "\\'"; break;
        default:
          if (c < 0x20 || c == 0x7F) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02X", c);
            out += buf;
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
    } else if (n > 1) {
      out.append(piece, i, n);
      i += n;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
      ++i;
    }
  }
  return out;
}

Status Run(const TokenizeOptions& opt) {
  std::string model = opt.model.empty() ? DefaultModelPath() : opt.model;
  if (model.empty()) {
    return Status::NotFound("no model given and no default model found; pass -m MODEL.gguf or run scripts/setup");
  }
  std::string text;
  if (!opt.text.empty() && !opt.file.empty()) return Status::InvalidArgument("give either --text or -f, not both");
  if (!opt.file.empty()) {
    std::ifstream in(opt.file, std::ios::binary);
    if (!in) return Status::IOError(opt.file + ": cannot open");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else if (!opt.text.empty()) {
    text = opt.text;
  } else {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  auto tok = LoadTokenizer(model);
  if (!tok.ok()) return tok.status();
  FORMIGA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, (*tok)->Encode(text, !opt.no_bos, opt.parse_special));
  if (opt.json) {
    nlohmann::json j;
    j["tokens"] = ids;
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back((*tok)->TokenToPiece(id));
    j["pieces"] = std::move(pieces);
    j["count"] = ids.size();
    // NOTE: a piece may be part of a UTF-8 character (byte tokens); JSON
    // strings must be valid UTF-8, so such bytes print as U+FFFD.
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    for (int32_t id : ids) std::cout << id << "\t'" << Escape((*tok)->TokenToPiece(id)) << "'\n";
    std::cout << ids.size() << " tokens\n";
  }
  return Status::Ok();
}

}  // namespace

void RegisterTokenize(CLI::App& app, CommandContext& ctx) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text");
  cmd->add_option("-m,--model", opt->model, "GGUF file, tokenizer.json, or a directory with one (default: the default model)");
  cmd->add_option("--text", opt->text, "Text to tokenize");
  cmd->add_option("-f,--file", opt->file, "Read the text from this file (default: stdin when no --text)");
  cmd->add_flag("--json", opt->json, "Print {\"tokens\": [...], \"pieces\": [...], \"count\": N}");
  cmd->add_flag("--no-bos", opt->no_bos, "Do not add the model's BOS/EOS tokens");
  cmd->add_flag("--parse-special", opt->parse_special,
                "Match special-token strings (e.g. <|im_start|>) in the text as single tokens");
  cmd->callback([opt, &ctx] {
    Status st = Run(*opt);
    if (!st.ok()) ctx.exit_code = ReportError(st);
  });
}

}  // namespace formiga::cli
