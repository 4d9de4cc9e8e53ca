using System.Text.Json.Serialization;

namespace Numalloc.Admin;

/// <summary>System.Text.Json source generation for the admin API's documents (no reflection: AOT-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(AllocatorStats))]
[JsonSerializable(typeof(IReadOnlyList<MemoryBlockInfo>))]
internal sealed partial class AdminJsonContext : JsonSerializerContext
{
}
