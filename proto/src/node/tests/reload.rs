//! A configuration reload on running nodes, one after the other (Momentum's race: nodes that
//! reload at different moments disagree about owners until someone announces the view).

use super::harness::*;
use crate::duravip::DuraVipConfig;
use crate::node::DuravipSetup;

#[test]
fn nodes_that_reload_one_after_the_other_agree_again_without_an_announce() {
    let names = ["a", "b", "c"];
    let mut c = Cluster::new(&names, bindings(4), DuraVipConfig::default(), 21);
    c.run_for(secs(10));
    let mut new = bindings(5);
    new.remove(3); // 10.1.1.4 is no longer declared; 10.1.1.5 is new
    for n in names {
        let now = c.at();
        let setup = DuravipSetup { bindings: new.clone(), config: DuraVipConfig::default() };
        c.members.get_mut(n).and_then(|m| m.core.as_mut()).expect("running").reconfigure_duravip(now, setup).expect("valid");
        c.drain(n);
        c.run_for(ms(700));
    }
    c.run_for(secs(6));
    assert!(c.holders(vip(4)).is_empty(), "an address no longer declared is released everywhere");
    for i in [1, 2, 3, 5] {
        let h = c.holders(vip(i));
        assert_eq!(h.len(), 1, "{} held by {h:?}", vip(i));
        for n in names {
            let table = c.core(n).duravip().expect("duravip").table(c.at());
            let row = table.vips.iter().find(|v| v.addr == vip(i)).expect("declared");
            assert_eq!(row.owner.as_deref(), Some(h[0].as_str()), "{n} on {}", vip(i));
            assert!(table.config_stable_secs <= 8);
        }
    }
    let mut bad = bindings(2);
    bad[1].addr = vip(1);
    let now = c.at();
    let core = c.members.get_mut("a").and_then(|m| m.core.as_mut()).expect("running");
    assert!(core.reconfigure_duravip(now, DuravipSetup { bindings: bad, config: DuraVipConfig::default() }).is_err());
    assert_eq!(core.duravip().expect("duravip").table(now).vips.len(), 4, "a refused reload changes nothing");
}

