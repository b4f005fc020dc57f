#include "model/model.h"

#include "formats/gguf.h"

namespace formiga {

Result<std::unique_ptr<Model>> LoadModel(const GgufFile& file, Backend& backend) {
  FORMIGA_ASSIGN_OR_RETURN(ModelConfig config, ConfigFromGguf(file));
  return LoadModel(file, ModelPlacement::Uniform(backend, config.n_layers));
}

Result<std::unique_ptr<Model>> LoadModel(const GgufFile& file, const ModelPlacement& placement) {
  FORMIGA_ASSIGN_OR_RETURN(ModelConfig config, ConfigFromGguf(file));
  FORMIGA_RETURN_IF_ERROR(config.Validate().WithContext(file.path()));
  FORMIGA_RETURN_IF_ERROR(placement.Validate(config.n_layers).WithContext(file.path()));
  switch (config.arch) {
    case Arch::kLlama: return LoadLlama(file, config, placement);
    case Arch::kQwen2: return LoadQwen2(file, config, placement);
    case Arch::kGemma3: return LoadGemma3(file, config, placement);
    case Arch::kFalcon: return LoadFalcon(file, config, placement);
    default: break;
  }
  return Status::Unsupported(file.path() + ": architecture '" + ArchName(config.arch) +
                             "' cannot run yet (supported: llama, qwen2, gemma3, falcon)");
}

}  // namespace formiga
