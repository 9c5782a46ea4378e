using System.Text.Json;

namespace RollingReboot.Xapi.Tests;

/// <summary>
/// The record reader that remembers where each field was (FieldLayout) reads exactly what a lookup by name reads, whatever the
/// order of the fields from one record to the next, with fields missing, null or repeated only in some records.
/// </summary>
public sealed class FieldLayoutTests
{
    private static readonly string[] Names = ["uuid", "name_label", "power_state", "memory_static_max", "VBDs", "other_config", "is_a_template", "resident_on"];

    [Fact]
    public void ReadsWhatALookupByNameReads_WhateverTheFieldOrderFromRecordToRecord()
    {
        var random = new Random(20261204);
        var layout = new FieldLayout();
        for (var n = 0; n < 500; n++)
        {
            // Mostly one order (as xapi writes them), sometimes shuffled, some fields left out or null.
            var names = random.Next(4) == 0 ? [.. Names.OrderBy(_ => random.Next())] : Names.ToList();
            names.RemoveAll(_ => random.Next(6) == 0);
            var json = "{" + string.Join(",", names.Select(name => $"\"{name}\":{Value(name, n, random)}")) + "}";
            using var document = JsonDocument.Parse(json);

            var hinted = new Fields(document.RootElement, layout);
            var plain = new Fields(document.RootElement);
            Assert.Equal(plain.Str("uuid"), hinted.Str("uuid"));
            Assert.Equal(plain.Str("name_label"), hinted.Str("name_label"));
            Assert.Equal(plain.Str("power_state"), hinted.Str("power_state"));
            Assert.Equal(plain.Long("memory_static_max"), hinted.Long("memory_static_max"));
            Assert.Equal(plain.List("VBDs"), hinted.List("VBDs"));
            Assert.Equal(plain.Map("other_config"), hinted.Map("other_config"));
            Assert.Equal(plain.Bool("is_a_template"), hinted.Bool("is_a_template"));
            Assert.Equal(plain.Ref("resident_on"), hinted.Ref("resident_on"));
            Assert.Equal(plain.Str("not_a_field"), hinted.Str("not_a_field"));
            if (names.Contains("uuid") && !json.Contains("\"uuid\":null", StringComparison.Ordinal))
            {
                Assert.Equal($"uuid-{n}", hinted.Str("uuid"));
            }
        }
    }

    private static string Value(string name, int n, Random random) => random.Next(10) == 0 ? "null" : name switch
    {
        "memory_static_max" => random.Next(2) == 0 ? $"{n * 1024}" : $"\"{n * 1024}\"",
        "VBDs" => $"[\"OpaqueRef:vbd-{n}\"]",
        "other_config" => $"{{\"k\":\"{n}\"}}",
        "is_a_template" => n % 2 == 0 ? "true" : "false",
        "resident_on" => $"\"OpaqueRef:host-{n % 7}\"",
        _ => $"\"{name}-{n}\"",
    };
}
