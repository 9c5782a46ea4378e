using System.CommandLine;
using System.Text;
using System.Text.RegularExpressions;

namespace RollingReboot.Cli.Tests.Docs;

/// <summary>
/// Every rollreboot command in docs/operations.md (and the README) is one the CLI accepts as written: the
/// runbook's copy-paste examples keep working as options change. What they do is tested end to end elsewhere.
/// </summary>
public sealed partial class OperationsDocTests
{
    private readonly RootCommand _root = CliApp.BuildRoot(new CliEnvironment { GetVariable = _ => null, Out = TextWriter.Null, Error = TextWriter.Null });

    [GeneratedRegex(@"```(\w*)\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CodeBlock();

    public static TheoryData<string> Documents => ["docs/operations.md", "README.md"];

    [Theory]
    [MemberData(nameof(Documents))]
    public void EveryRollrebootCommandInTheDocParses(string document)
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot(), document)).Replace("\r\n", "\n", StringComparison.Ordinal);
        var commands = CodeBlock().Matches(text).Where(m => m.Groups[1].Value is "" or "sh" or "bash" or "cron").SelectMany(m => Commands(m.Groups[2].Value)).ToList();
        Assert.True(commands.Count >= (document == "README.md" ? 1 : 20), $"only {commands.Count} rollreboot commands found in {document}");
        var failures = new List<string>();
        foreach (var words in commands)
        {
            var parse = _root.Parse(words);
            if (parse.Errors.Count > 0)
            {
                failures.Add($"rollreboot {string.Join(' ', words)}: {string.Join("; ", parse.Errors.Select(e => e.Message))}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "RollingReboot.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("no RollingReboot.sln above " + AppContext.BaseDirectory);
    }

    /// <summary>The arguments of each rollreboot invocation in a shell snippet (continuations joined, comments dropped).</summary>
    private static IEnumerable<string[]> Commands(string block)
    {
        var joined = block.Replace("\\\n", " ", StringComparison.Ordinal);
        foreach (var rawLine in joined.Split('\n'))
        {
            var line = rawLine.TrimStart('#', ' ');
            foreach (Match m in Regex.Matches(line, @"(?:^|[;&|(]\s*|\s)(?:\./scripts/)?rollreboot\s+(?<args>[^;&|#]*)"))
            {
                var words = ShellWords(m.Groups["args"].Value.Trim());
                if (words.Count == 0 || words[0].StartsWith('>') || words[0] == "-" || words[0].StartsWith('$'))
                {
                    continue;
                }

                yield return [.. words.TakeWhile(w => !w.StartsWith('>'))];
            }
        }
    }

    private static List<string> ShellWords(string s)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '$' && i + 1 < s.Length && s[i + 1] == '(')
            {
                // A command substitution is one word here.
                var end = s.IndexOf(')', i);
                end = end < 0 ? s.Length - 1 : end;
                current.Append(s, i, end - i + 1);
                i = end;
                inWord = true;
            }
            else if (c is '\'' or '"')
            {
                var end = s.IndexOf(c, i + 1);
                end = end < 0 ? s.Length : end;
                current.Append(s, i + 1, end - i - 1);
                i = end;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }
}
