using Emu64.Cli;
using Emu64.Mmu;

namespace Emu64.Tests.Mmu;

[Trait("Category", "Mmu")]
[Trait("Category", "Cli")]
public class TlbCliTests
{
    [Fact]
    public void Tlb_config_takes_a_JSON_file_and_name_value_settings_in_order()
    {
        string path = Path.Combine(Path.GetTempPath(), $"emu64-tlb-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{ "stlb": { "entries": 768, "ways": 6 }, "cost": { "cr3write": 140 } }""");
        try
        {
            var o = Cli.Cli.ParseRunOptions(new[] { "k.elf", "--tlb-config", path, "--tlb-config", "dtlb4k.entries=32,cost.invlpg=300" }, needKernel: true);
            var c = Cli.Cli.BuildTlbConfig(o)!;
            Assert.Equal((768, 6), (c.Stlb.Entries, c.Stlb.Ways));
            Assert.Equal(140, c.Cost.Cr3Write);
            Assert.Equal(32, c.Dtlb4K.Entries);
            Assert.Equal(300, c.Cost.Invlpg);
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("stlb.entries=1000")]
    [InlineData("bogus.field=1")]
    [InlineData("/nonexistent/tlb.json")]
    public void A_bad_tlb_config_is_a_clear_command_line_error(string arg)
    {
        var e = Assert.Throws<CliException>(() => Cli.Cli.ParseRunOptions(new[] { "k.elf", "--tlb-config", arg }, needKernel: true));
        Assert.Contains(arg.Contains('=') ? "TLB" : "does not exist", e.Message);
    }

    [Fact]
    public void Without_tlb_config_the_machine_uses_the_documented_defaults()
    {
        var o = Cli.Cli.ParseRunOptions(new[] { "k.elf" }, needKernel: true);
        Assert.Null(Cli.Cli.BuildTlbConfig(o));
        var d = new TlbConfig();
        Assert.Equal((64, 4, 32, 4, 4), (d.Dtlb4K.Entries, d.Dtlb4K.Ways, d.Dtlb2M.Entries, d.Dtlb2M.Ways, d.Dtlb1G.Entries));
        Assert.Equal((128, 8, 8, 1536, 12, 16, 4), (d.Itlb4K.Entries, d.Itlb4K.Ways, d.Itlb2M.Entries, d.Stlb.Entries, d.Stlb.Ways, d.Stlb1G.Entries, d.Stlb1G.Ways));
    }
}
